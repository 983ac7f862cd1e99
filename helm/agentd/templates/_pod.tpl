{{/*
The pod of both modes. dind: a dockerd native sidecar (an init container with
restartPolicy: Always, so it starts before and stops after agentd), emptyDirs shared at
identical paths. host: the node's socket and hostPath directories at identical paths.
Identical paths matter: agentd asks the engine to bind-mount files from its data and run
directories into sandboxes, and the engine resolves those paths on its own filesystem.
*/}}
{{- define "agentd.podTemplate" -}}
{{- $v := .Values -}}
{{- $dind := eq $v.engine.mode "dind" -}}
{{- $host := not $dind -}}
{{- $asRoot := and $host $v.engine.host.runAsRoot -}}
{{- $socket := include "agentd.dockerSocket" . -}}
{{- $dataDir := include "agentd.dataDir" . -}}
{{- $runDir := include "agentd.runDir" . -}}
metadata:
  labels:
    {{- include "agentd.selectorLabels" . | nindent 4 }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "agentd.serviceAccountName" . }}
  # agentd talks to no Kubernetes API.
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ include "agentd.terminationGracePeriodSeconds" . }}
  {{- if and $dind $v.engine.runtimeClassName }}
  runtimeClassName: {{ $v.engine.runtimeClassName }}
  {{- end }}
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    fsGroup: 10100
    fsGroupChangePolicy: OnRootMismatch
    seccompProfile:
      type: RuntimeDefault
    {{- if and $host (not $asRoot) }}
    # The node's docker group: the socket is root:docker 0660.
    supplementalGroups: [{{ $v.engine.host.dockerGroup | int }}]
    {{- end }}
  {{- $nodeSelector := $v.nodeSelector }}
  {{- if $host }}
  {{- $nodeSelector = merge (dict) $v.engine.host.nodeSelector $v.nodeSelector }}
  {{- end }}
  {{- with $nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  initContainers:
    {{- if $dind }}
    # The Docker engine, as a native sidecar: running before agentd and the image init
    # container start (its startup probe gates them), stopped only after agentd has left.
    - name: engine
      image: {{ include "agentd.engineImage" . }}
      imagePullPolicy: {{ $v.engine.image.pullPolicy }}
      restartPolicy: Always
      # On cgroup v2, dockerd turns on the controllers (memory, cpu, pids) for its
      # containers' cgroups, which the kernel refuses while processes sit in the
      # container's own cgroup: move them into a child cgroup first (as the docker:dind
      # image's entrypoint does). Without write access to /sys/fs/cgroup this does nothing.
      command:
        - /bin/sh
        - -c
        - |
          if [ -f /sys/fs/cgroup/cgroup.controllers ] && [ -w /sys/fs/cgroup ]; then
            mkdir -p /sys/fs/cgroup/init
            xargs -rn1 < /sys/fs/cgroup/cgroup.procs > /sys/fs/cgroup/init/cgroup.procs || :
            sed -e 's/ / +/g' -e 's/^/+/' < /sys/fs/cgroup/cgroup.controllers > /sys/fs/cgroup/cgroup.subtree_control || :
          fi
          exec dockerd "$@"
        - dockerd
      args:
        - --host=unix://{{ $socket }}
        # agentd (uid/gid 10100) reaches the socket through its group.
        - --group=10100
        - --storage-driver={{ $v.engine.storageDriver }}
        {{- range $v.engine.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      # dockerd creates namespaces, cgroups, mounts and iptables rules for each sandbox;
      # see engine.securityContext in values.yaml.
      securityContext:
        {{- toYaml $v.engine.securityContext | nindent 8 }}
      startupProbe:
        exec:
          command: [docker, --host=unix://{{ $socket }}, info]
        periodSeconds: 2
        failureThreshold: 90
      # Restarting the engine kills every sandbox in the pod: only after five minutes
      # without an answer.
      livenessProbe:
        exec:
          command: [docker, --host=unix://{{ $socket }}, version]
        periodSeconds: 30
        timeoutSeconds: 20
        failureThreshold: 10
      readinessProbe:
        exec:
          command: [docker, --host=unix://{{ $socket }}, version]
        periodSeconds: 10
        timeoutSeconds: 10
      resources:
        {{- toYaml $v.engine.resources | nindent 8 }}
      volumeMounts:
        - {name: engine-socket, mountPath: /run/agentd-engine}
        - {name: data, mountPath: {{ $dataDir }}}
        - {name: run, mountPath: {{ $runDir }}}
        - {name: docker-storage, mountPath: /var/lib/docker}
    {{- else if not $asRoot }}
    # hostPath directories are made root-owned by the kubelet: hand them to agentd's uid
    # (root with CHOWN alone; nothing else runs as root).
    - name: host-dirs
      image: {{ include "agentd.image" . }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      command: [chown, "10100:10100", {{ $dataDir | quote }}, {{ $runDir | quote }}]
      securityContext:
        runAsNonRoot: false
        runAsUser: 0
        runAsGroup: 0
        readOnlyRootFilesystem: true
        allowPrivilegeEscalation: false
        capabilities:
          drop: [ALL]
          add: [CHOWN]
        seccompProfile:
          type: RuntimeDefault
      resources:
        requests: {cpu: 10m, memory: 16Mi}
        limits: {cpu: 100m, memory: 64Mi}
      volumeMounts:
        - {name: data, mountPath: {{ $dataDir }}}
        - {name: run, mountPath: {{ $runDir }}}
    {{- end }}
    # Puts the agent image into the engine before agentd starts ({{ $v.agentImage.source }}).
    - name: agent-image
      image: {{ include "agentd.engineImage" . }}
      imagePullPolicy: {{ $v.engine.image.pullPolicy }}
      {{- if eq $v.agentImage.source "registry" }}
      command: [docker, pull, {{ include "agentd.agentImage" . | quote }}]
      {{- else }}
      command: [docker, load, --input, {{ printf "/agent-image/%s" $v.agentImage.tarball.path | quote }}]
      {{- end }}
      env:
        - {name: DOCKER_HOST, value: "unix://{{ $socket }}"}
        - {name: HOME, value: /tmp}
        {{- if and (eq $v.agentImage.source "registry") $v.agentImage.pullSecret }}
        - {name: DOCKER_CONFIG, value: /docker-config}
        {{- end }}
      securityContext:
        {{- if $asRoot }}
        {{- include "agentd.rootSecurityContext" . | nindent 8 }}
        {{- else }}
        {{- include "agentd.restrictedSecurityContext" . | nindent 8 }}
        {{- end }}
      resources:
        {{- toYaml $v.agentImage.resources | nindent 8 }}
      volumeMounts:
        - {name: tmp, mountPath: /tmp}
        {{- if $dind }}
        - {name: engine-socket, mountPath: /run/agentd-engine}
        {{- else }}
        - {name: docker-socket, mountPath: {{ $socket }}}
        {{- end }}
        {{- if eq $v.agentImage.source "tarball" }}
        - {name: agent-image, mountPath: /agent-image, readOnly: true}
        {{- else if $v.agentImage.pullSecret }}
        - {name: agent-image-pull-secret, mountPath: /docker-config, readOnly: true}
        {{- end }}
  containers:
    - name: agentd
      image: {{ include "agentd.image" . }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args: [serve]
      ports:
        - {name: http, containerPort: 8700, protocol: TCP}
      env:
        - {name: AGENTD_CONFIG, value: /etc/agentd/agentd.toml}
        # The image sets these four in its environment, which wins over the file.
        - {name: AGENTD_DATA_DIR, value: {{ $dataDir | quote }}}
        - {name: AGENTD_RUN_DIR, value: {{ $runDir | quote }}}
        - {name: AGENTD_LOG, value: {{ $v.config.log | quote }}}
        - {name: AGENTD_LOG_FORMAT, value: {{ $v.config.logFormat | quote }}}
        - {name: DOCKER_HOST, value: "unix://{{ $socket }}"}
        - {name: HOME, value: /tmp}
        {{- with include "agentd.databaseSecretRef" . }}
        {{- if eq $v.database.driver "postgres" }}
        - name: DATABASE_URL
          valueFrom:
            secretKeyRef:
              {{- . | nindent 14 }}
        {{- end }}
        {{- end }}
        - name: AGENTD_ADMIN_TOKEN
          valueFrom:
            secretKeyRef:
              {{- include "agentd.adminTokenSecretRef" . | nindent 14 }}
        {{- with include "agentd.secretKeySecretRef" . }}
        - name: AGENTD_SECRET_KEY
          valueFrom:
            secretKeyRef:
              {{- . | nindent 14 }}
        {{- end }}
        {{- with include "agentd.modelApiKeySecretRef" . }}
        - name: {{ $v.modelApiKey.envName }}
          valueFrom:
            secretKeyRef:
              {{- . | nindent 14 }}
        {{- end }}
        {{- with $v.model.baseUrl }}
        - {name: ANTHROPIC_BASE_URL, value: {{ . | quote }}}
        {{- end }}
        {{- with $v.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      securityContext:
        {{- if $asRoot }}
        {{- include "agentd.rootSecurityContext" . | nindent 8 }}
        {{- else }}
        {{- include "agentd.restrictedSecurityContext" . | nindent 8 }}
        {{- end }}
      startupProbe:
        httpGet: {path: /healthz, port: http}
        periodSeconds: {{ $v.probes.startup.periodSeconds }}
        failureThreshold: {{ $v.probes.startup.failureThreshold }}
      livenessProbe:
        httpGet: {path: /healthz, port: http}
        periodSeconds: {{ $v.probes.liveness.periodSeconds }}
        timeoutSeconds: {{ $v.probes.liveness.timeoutSeconds }}
        failureThreshold: {{ $v.probes.liveness.failureThreshold }}
      # 503 while shutting down, or while the database or the engine does not answer.
      readinessProbe:
        httpGet: {path: /readyz, port: http}
        periodSeconds: {{ $v.probes.readiness.periodSeconds }}
        timeoutSeconds: {{ $v.probes.readiness.timeoutSeconds }}
        failureThreshold: {{ $v.probes.readiness.failureThreshold }}
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      volumeMounts:
        - {name: config, mountPath: /etc/agentd, readOnly: true}
        - {name: tmp, mountPath: /tmp}
        - {name: data, mountPath: {{ $dataDir }}}
        - {name: run, mountPath: {{ $runDir }}}
        {{- if $dind }}
        - {name: engine-socket, mountPath: /run/agentd-engine}
        {{- else }}
        - {name: docker-socket, mountPath: {{ $socket }}}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "agentd.fullname" . }}
    - name: tmp
      emptyDir:
        sizeLimit: 1Gi
    {{- if $dind }}
    - name: engine-socket
      emptyDir:
        sizeLimit: 1Mi
    - name: data
      {{- if $v.dataDir.volume }}
      {{- toYaml $v.dataDir.volume | nindent 6 }}
      {{- else }}
      emptyDir:
        sizeLimit: {{ $v.dataDir.sizeLimit }}
      {{- end }}
    - name: run
      emptyDir:
        sizeLimit: 64Mi
    - name: docker-storage
      emptyDir:
        sizeLimit: {{ $v.engine.dockerStorage.sizeLimit }}
    {{- else }}
    - name: docker-socket
      hostPath:
        path: {{ $socket }}
        type: Socket
    - name: data
      hostPath:
        path: {{ $dataDir }}
        type: DirectoryOrCreate
    - name: run
      hostPath:
        path: {{ $runDir }}
        type: DirectoryOrCreate
    {{- end }}
    {{- if eq $v.agentImage.source "tarball" }}
    - name: agent-image
      {{- toYaml $v.agentImage.tarball.volume | nindent 6 }}
    {{- else if $v.agentImage.pullSecret }}
    - name: agent-image-pull-secret
      secret:
        secretName: {{ $v.agentImage.pullSecret }}
        items:
          - {key: .dockerconfigjson, path: config.json}
    {{- end }}
{{- end -}}

{{/* host mode with engine.host.runAsRoot: root, but no capabilities and no escalation. */}}
{{- define "agentd.rootSecurityContext" -}}
runAsNonRoot: false
runAsUser: 0
runAsGroup: 0
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
