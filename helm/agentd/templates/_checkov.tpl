{{/*
checkov's findings on the workload that are the design, each with its reason (checkov
reads checkov.io/skipN annotations on the resource, so a skip covers all its containers:
scripts/helm_check.py checks agentd's own container and the init container separately).
Each skip is rendered only where the finding arises.
*/}}
{{- define "agentd.checkovSkips" -}}
{{- $v := .Values -}}
{{- $skips := list
  "CKV_K8S_43=the images are built on the operator's side and pushed to their registry under version tags (image.tag, engine.image.tag, agentImage.tag); no digest exists when the chart is written"
  "CKV_K8S_15=pullPolicy is a value, IfNotPresent by default: the images carry version tags, and pods should start while the operator's registry is unreachable"
  "CKV_K8S_35=agentd reads DATABASE_URL, AGENTD_ADMIN_TOKEN, AGENTD_SECRET_KEY and the model credential from its environment (secretKeyRef from Kubernetes Secrets only); the database URL and the model credential have no file option"
-}}
{{- if eq $v.engine.mode "dind" -}}
{{- if $v.engine.securityContext.privileged -}}
{{- $skips = append $skips "CKV_K8S_16=the dockerd sidecar must be privileged: it makes namespaces, cgroups and mounts for every sandbox (engine.runtimeClassName with e.g. Sysbox avoids it); agentd and the init container are unprivileged" -}}
{{- end -}}
{{- $skips = concat $skips (list
  "CKV_K8S_20=the dockerd sidecar is privileged or holds the capabilities dockerd needs; agentd and the init container set allowPrivilegeEscalation false"
  "CKV_K8S_22=dockerd writes its own and containerd's state across its root filesystem; agentd and the init container have read-only root filesystems"
  "CKV_K8S_37=the dockerd sidecar holds the capabilities it gives the sandboxes (which drop all of theirs); agentd and the init container drop ALL"
  "CKV_K8S_28=the dockerd sidecar keeps NET_RAW among the capabilities dockerd needs; agentd and the init container drop ALL, and the sandboxes run with no network") -}}
{{- else -}}
{{- $skips = append $skips "CKV_K8S_27=host mode (opt-in) is agentd on the node's own Docker engine through its socket; the README says what that gives away: the socket is root on the node" -}}
{{- if $v.engine.host.runAsRoot -}}
{{- $skips = concat $skips (list
  "CKV_K8S_23=engine.host.runAsRoot: agentd runs as root (no capabilities) to reach the node's Docker socket without knowing its group; the socket is root on the node anyway"
  "CKV_K8S_40=engine.host.runAsRoot: agentd runs as uid 0 to reach the node's Docker socket (see CKV_K8S_23)") -}}
{{- else -}}
{{- $skips = append $skips "CKV_K8S_25=the host-dirs init container adds CHOWN alone to hand the hostPath directories the kubelet made root-owned to agentd's uid 10100" -}}
{{- end -}}
{{- end -}}
{{- range $i, $skip := $skips }}
checkov.io/skip{{ add1 $i }}: {{ $skip | quote }}
{{- end -}}
{{- end -}}
