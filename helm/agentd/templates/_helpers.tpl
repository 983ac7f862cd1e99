{{/* Names, labels and the values every template derives the same way. */}}

{{- define "agentd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "agentd.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "agentd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agentd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "agentd.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "agentd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: supervisor
{{- end -}}

{{- define "agentd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "agentd.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Images: "" tags mean the chart's appVersion (the agent image's tag is required). */}}
{{- define "agentd.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "agentd.engineImage" -}}
{{- printf "%s:%s" .Values.engine.image.repository (default .Chart.AppVersion .Values.engine.image.tag) -}}
{{- end -}}

{{- define "agentd.agentImage" -}}
{{- printf "%s:%s" .Values.agentImage.repository .Values.agentImage.tag -}}
{{- end -}}

{{/* Where the engine's socket, the data and the run directory are, by mode. */}}
{{- define "agentd.dockerSocket" -}}
{{- if eq .Values.engine.mode "host" -}}
{{- .Values.engine.host.socketPath -}}
{{- else -}}
/run/agentd-engine/docker.sock
{{- end -}}
{{- end -}}

{{- define "agentd.dataDir" -}}
{{- if eq .Values.engine.mode "host" -}}{{ .Values.engine.host.dataDir }}{{- else -}}/var/lib/agentd{{- end -}}
{{- end -}}

{{- define "agentd.runDir" -}}
{{- if eq .Values.engine.mode "host" -}}{{ .Values.engine.host.runDir }}{{- else -}}/run/agentd{{- end -}}
{{- end -}}

{{/* on-shutdown: drain where the engine dies with the pod, detach where it outlives it. */}}
{{- define "agentd.onShutdown" -}}
{{- if .Values.config.onShutdown -}}
{{- .Values.config.onShutdown -}}
{{- else if eq .Values.engine.mode "host" -}}
detach
{{- else -}}
drain
{{- end -}}
{{- end -}}

{{- define "agentd.shutdownGraceSeconds" -}}
{{- if kindIs "invalid" .Values.config.shutdownGraceSeconds -}}
{{- if eq (include "agentd.onShutdown" .) "drain" -}}3600{{- else -}}30{{- end -}}
{{- else -}}
{{- .Values.config.shutdownGraceSeconds | int -}}
{{- end -}}
{{- end -}}

{{- define "agentd.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- add (include "agentd.shutdownGraceSeconds" . | int) 90 -}}
{{- else -}}
{{- .Values.terminationGracePeriodSeconds | int -}}
{{- end -}}
{{- end -}}

{{/* The chart's own Secret, when secrets.create. */}}
{{- define "agentd.secretName" -}}
{{- printf "%s-secrets" (include "agentd.fullname" .) -}}
{{- end -}}

{{/*
A secretKeyRef for one credential: its existingSecret, else the chart's Secret when it
holds that value inline, else nothing. Call with (list $ref $inline $chartKey $root).
*/}}
{{- define "agentd.secretRef" -}}
{{- $ref := index . 0 -}}
{{- $inline := index . 1 -}}
{{- $chartKey := index . 2 -}}
{{- $root := index . 3 -}}
{{- if $ref.existingSecret -}}
name: {{ $ref.existingSecret }}
key: {{ $ref.key }}
{{- else if and $root.Values.secrets.create $inline -}}
name: {{ include "agentd.secretName" $root }}
key: {{ $chartKey }}
{{- end -}}
{{- end -}}

{{- define "agentd.databaseSecretRef" -}}
{{- include "agentd.secretRef" (list (dict "existingSecret" .Values.database.existingSecret "key" .Values.database.secretKey) .Values.secrets.databaseUrl "database-url" .) -}}
{{- end -}}

{{- define "agentd.adminTokenSecretRef" -}}
{{- include "agentd.secretRef" (list .Values.adminToken .Values.secrets.adminToken "admin-token" .) -}}
{{- end -}}

{{- define "agentd.secretKeySecretRef" -}}
{{- include "agentd.secretRef" (list .Values.secretKey .Values.secrets.secretKey "secret-key" .) -}}
{{- end -}}

{{- define "agentd.modelApiKeySecretRef" -}}
{{- include "agentd.secretRef" (list .Values.modelApiKey .Values.secrets.modelApiKey "model-api-key" .) -}}
{{- end -}}

{{/* The one pod that answers alone: results kept locally are served only by it. */}}
{{- define "agentd.singlePod" -}}
{{- if and (eq .Values.engine.mode "dind") (eq (int .Values.replicas) 1) -}}true{{- end -}}
{{- end -}}

{{/* The hardened securityContext of agentd and of the init containers that need no root. */}}
{{- define "agentd.restrictedSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10100
runAsGroup: 10100
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
