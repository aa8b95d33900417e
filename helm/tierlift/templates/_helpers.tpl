{{- define "tierlift.fullname" -}}
{{- printf "%s-tierlift" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "tierlift.labels" -}}
app.kubernetes.io/name: tierlift
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tierlift.selector" -}}
app.kubernetes.io/name: tierlift
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tierlift.natsUrl" -}}
{{- if .Values.nats.install -}}
{{ if .Values.tls.enabled }}tls{{ else }}nats{{ end }}://{{ include "tierlift.fullname" . }}-nats:4222
{{- else -}}
{{- required "nats.url is required when nats.install is false" .Values.nats.url -}}
{{- end -}}
{{- end -}}

{{- define "tierlift.databaseSecret" -}}
{{- .Values.database.existingSecret | default (printf "%s-database" (include "tierlift.fullname" .)) -}}
{{- end -}}

{{- define "tierlift.routerKeySecret" -}}
{{- .Values.routerKey.existingSecret | default (printf "%s-router-key" (include "tierlift.fullname" .)) -}}
{{- end -}}

{{- define "tierlift.keysSecret" -}}
{{- .Values.providerKeys.existingSecret | default (printf "%s-provider-keys" (include "tierlift.fullname" .)) -}}
{{- end -}}

{{/* Environment every service gets. */}}
{{- define "tierlift.commonEnv" -}}
- name: TIERLIFT_LISTEN
  value: "0.0.0.0:{{ .Values.grpcPort }}"
- name: TIERLIFT_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: TIERLIFT_OTLP_ENDPOINT
  value: {{ .Values.otlpEndpoint | quote }}
{{- if .Values.metrics.enabled }}
- name: TIERLIFT_METRICS_LISTEN
  value: "0.0.0.0:{{ .Values.metrics.port }}"
{{- end }}
- name: TIERLIFT_SHUTDOWN_GRACE_S
  value: {{ sub .Values.terminationGracePeriodSeconds 5 | quote }}
- name: TIERLIFT_NATS_URL
  value: {{ include "tierlift.natsUrl" . | quote }}
- name: TIERLIFT_STREAM_REPLICAS
  value: {{ .Values.nats.streamReplicas | quote }}
{{- if .Values.tls.enabled }}
{{- $tls := printf "%s/tls" (include "tierlift.secretsRoot" .) }}
- name: TIERLIFT_TLS_CERT_FILE
  value: {{ $tls }}/tls.crt
- name: TIERLIFT_TLS_KEY_FILE
  value: {{ $tls }}/tls.key
- name: TIERLIFT_TLS_CA_FILE
  value: {{ $tls }}/ca.crt
- name: TIERLIFT_TLS_CLIENT_CERTS
  value: {{ .Values.tls.clientCerts | quote }}
- name: TIERLIFT_TLS_IDENTITIES
  value: {{ .Values.tls.identities | quote }}
- name: TIERLIFT_HEALTH_LISTEN
  value: "0.0.0.0:{{ .Values.tls.healthPort }}"
{{- end }}
{{- if .Values.catalog }}
- name: TIERLIFT_CATALOG
  value: /etc/tierlift/catalog.yaml
{{- end }}
{{- if .Values.policy }}
- name: TIERLIFT_POLICY
  value: /etc/tierlift/policy.yaml
{{- end }}
{{- end -}}

{{/*
A service Deployment. Arguments (dict): root, component, module, spec (replicas, resources),
env (list, may be empty), volumes, volumeMounts (lists, may be empty). The combined topology's
request-path process adds: command (instead of `python -m module`), grpc (serves gRPC beside
`http`), natsRole (the NATS user it runs as), services (its Services, "tierlift.service" args).
*/}}
{{- define "tierlift.deployment" -}}
{{- $root := .root -}}
{{- $natsRole := .natsRole | default .component -}}
{{- $natsUser := and $root.Values.nats.auth.enabled (has $natsRole (list "router" "ledger" "assessor")) -}}
{{- $tls := $root.Values.tls.enabled -}}
{{- $grpc := or (not .http) .grpc -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "tierlift.fullname" $root }}-{{ .component }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "tierlift.labels" . | nindent 4 }}
  annotations:
    {{- include "tierlift.imageSkips" (include "tierlift.image" $root) | nindent 4 }}
spec:
  {{- if not (and .spec.autoscaling .spec.autoscaling.enabled) }}
  replicas: {{ .spec.replicas }}
  {{- end }}
  {{- if .recreate }}
  strategy:
    type: Recreate
  {{- end }}
  selector:
    matchLabels:
      {{- include "tierlift.selector" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "tierlift.selector" . | nindent 8 }}
      annotations:
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    spec:
      serviceAccountName: {{ include "tierlift.fullname" $root }}
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if .migrateFirst }}
      initContainers:
        # SQLite lives on the ledger's own volume, so the ledger pod migrates it itself.
        - name: migrate
          image: {{ include "tierlift.image" $root | quote }}
          imagePullPolicy: {{ include "tierlift.pullPolicy" (include "tierlift.image" $root) }}
          command: ["tierlift", "migrate"]
          env:
            {{- toYaml .env | nindent 12 }}
          resources:
            {{- toYaml .spec.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            {{- toYaml .volumeMounts | nindent 12 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ include "tierlift.image" $root | quote }}
          imagePullPolicy: {{ include "tierlift.pullPolicy" (include "tierlift.image" $root) }}
          {{- if .command }}
          command: {{ toJson .command }}
          {{- else }}
          command: ["python", "-m", {{ .module | quote }}]
          {{- end }}
          ports:
            {{- if .http }}
            - name: http
              containerPort: {{ $root.Values.gateway.httpPort }}
              protocol: TCP
            {{- end }}
            {{- if $grpc }}
            - name: grpc
              containerPort: {{ $root.Values.grpcPort }}
              protocol: TCP
            {{- if $tls }}
            - name: health
              containerPort: {{ $root.Values.tls.healthPort }}
              protocol: TCP
            {{- end }}
            {{- end }}
            {{- if $root.Values.metrics.enabled }}
            - name: metrics
              containerPort: {{ $root.Values.metrics.port }}
              protocol: TCP
            {{- end }}
          {{- $keys := and .providerKeys (or $root.Values.providerKeys.existingSecret $root.Values.providerKeys.values) }}
          env:
            {{- include "tierlift.commonEnv" $root | nindent 12 }}
            {{- if $keys }}
            # provider API keys as files, one per key (OPENAI_API_KEY, ...), never as variables
            - name: TIERLIFT_SECRETS_DIR
              value: {{ include "tierlift.secretsRoot" $root }}/provider-keys
            {{- end }}
            {{- if not (has .component (list "ledger" "gateway" "assessor")) }}
            # the router presents this key; the classifier and the adapters accept only it
            - name: TIERLIFT_ROUTER_KEY_FILE
              value: {{ include "tierlift.secretsRoot" $root }}/router-key/ROUTER_KEY
            {{- end }}
            {{- if $natsUser }}
            # this service's NATS user: it authenticates and signs every event published
            - name: TIERLIFT_NATS_SEED_FILE
              value: {{ include "tierlift.secretsRoot" $root }}/nats-user/seed
            {{- end }}
            {{- if $natsUser }}
            # whose events it takes, each only on the subjects its role publishes (core/nats_access.py)
            - name: TIERLIFT_TRUSTED_PRODUCERS
              value: {{ include "tierlift.trustedProducers" (dict "root" $root "component" $natsRole) | quote }}
            {{- end }}
            {{- with .env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- $probe := dict "grpc" (dict "port" (ternary $root.Values.tls.healthPort $root.Values.grpcPort $tls)) }}
          {{- if .http }}
          {{- $probe = dict "httpGet" (dict "path" "/health" "port" "http" "scheme" (ternary "HTTPS" "HTTP" $tls)) }}
          {{- end }}
          {{- $startupProbe := $probe }}
          {{- if and .http .grpc }}
          {{- /* both: ready and alive on the router's gRPC health (NOT_SERVING while it drains);
                 started once the gateway, which starts after the router, answers HTTP */}}
          {{- $probe = dict "grpc" (dict "port" (ternary $root.Values.tls.healthPort $root.Values.grpcPort $tls)) }}
          {{- end }}
          readinessProbe:
            {{- toYaml $probe | nindent 12 }}
            periodSeconds: 5
            failureThreshold: 2
          livenessProbe:
            {{- toYaml $probe | nindent 12 }}
            periodSeconds: 10
            failureThreshold: 3
          startupProbe:
            {{- toYaml $startupProbe | nindent 12 }}
            periodSeconds: 2
            failureThreshold: 60
          resources:
            {{- toYaml .spec.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if or $root.Values.catalog $root.Values.policy }}
            - name: config
              mountPath: /etc/tierlift
              readOnly: true
            {{- end }}
            {{- if $keys }}
            - name: provider-keys
              mountPath: {{ include "tierlift.secretsRoot" $root }}/provider-keys
              readOnly: true
            {{- end }}
            {{- if not (has .component (list "ledger" "gateway" "assessor")) }}
            - name: router-key
              mountPath: {{ include "tierlift.secretsRoot" $root }}/router-key
              readOnly: true
            {{- end }}
            {{- if $natsUser }}
            - name: nats-user
              mountPath: {{ include "tierlift.secretsRoot" $root }}/nats-user
              readOnly: true
            {{- end }}
            {{- if $tls }}
            - name: tls
              mountPath: {{ include "tierlift.secretsRoot" $root }}/tls
              readOnly: true
            {{- end }}
            {{- with .volumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir: {}
        {{- if $keys }}
        - name: provider-keys
          secret:
            secretName: {{ include "tierlift.keysSecret" $root }}
            defaultMode: 0400
            {{- with .providerKeyNames }}
            optional: true  # a missing key stops the adapter at start, naming the variable
            items:
              {{- range . }}
              - {key: {{ . }}, path: {{ . }}}
              {{- end }}
            {{- end }}
        {{- end }}
        {{- if not (has .component (list "ledger" "gateway" "assessor")) }}
        - name: router-key
          secret:
            secretName: {{ include "tierlift.routerKeySecret" $root }}
            defaultMode: 0400
        {{- end }}
        {{- if $natsUser }}
        - name: nats-user
          secret:
            secretName: {{ $root.Values.nats.auth.existingSecret }}
            defaultMode: 0400
            items:
              - {key: {{ printf "%s_NATS_SEED" (upper $natsRole) }}, path: seed}
        {{- end }}
        {{- if $root.Values.tls.enabled }}
        - name: tls
          secret:
            secretName: {{ $root.Values.tls.existingSecret }}
            defaultMode: 0400
        {{- end }}
        {{- if or $root.Values.catalog $root.Values.policy }}
        - name: config
          configMap:
            name: {{ include "tierlift.fullname" $root }}-config
        {{- end }}
        {{- with .volumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
{{- range (.services | default (list (dict "component" .component "http" .http "metrics" $root.Values.metrics.enabled))) }}
---
{{ include "tierlift.service" (merge (dict "root" $root) .) }}
{{- end }}
{{- if .spec.pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "tierlift.fullname" $root }}-{{ .component }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "tierlift.labels" . | nindent 4 }}
spec:
  minAvailable: {{ .spec.pdb.minAvailable }}
  selector:
    matchLabels:
      {{- include "tierlift.selector" . | nindent 6 }}
{{- end }}
{{- if and .spec.autoscaling .spec.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "tierlift.fullname" $root }}-{{ .component }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "tierlift.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "tierlift.fullname" $root }}-{{ .component }}
  minReplicas: {{ .spec.autoscaling.minReplicas }}
  maxReplicas: {{ .spec.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .spec.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
{{- end -}}


{{/*
A component's Service. Arguments (dict): root, component (its name and label), selects (the pods'
component, default: the same), http (the gateway's port), grpc (default: not http), metrics.
*/}}
{{- define "tierlift.service" -}}
{{- $root := .root -}}
{{- $grpc := ternary .grpc (not .http) (hasKey . "grpc") -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "tierlift.fullname" $root }}-{{ .component }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "tierlift.labels" . | nindent 4 }}
spec:
  {{- if $grpc }}
  # headless: callers resolve every ready replica and spread their gRPC calls over them
  # (round_robin, core/grpc_server.py); a ClusterIP would pin each caller's one HTTP/2 connection
  # to one pod
  clusterIP: None
  {{- end }}
  selector:
    {{- include "tierlift.selector" (dict "root" $root "component" (.selects | default .component)) | nindent 4 }}
  ports:
    {{- if .http }}
    - name: http
      port: {{ $root.Values.gateway.httpPort }}
      targetPort: http
      protocol: TCP
    {{- end }}
    {{- if $grpc }}
    - name: grpc
      port: {{ $root.Values.grpcPort }}
      targetPort: grpc
      protocol: TCP
      appProtocol: grpc
    {{- end }}
    {{- if .metrics }}
    - name: metrics
      port: {{ $root.Values.metrics.port }}
      targetPort: metrics
      protocol: TCP
      appProtocol: http
    {{- end }}
{{- end -}}


{{/* The service image: by digest when one is given, by tag otherwise. */}}
{{- define "tierlift.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* Pull policy: an image pinned by digest cannot change, so IfNotPresent; a tag can move, so Always. */}}
{{- define "tierlift.pullPolicy" -}}
{{- if contains "@sha256:" . -}}IfNotPresent{{- else -}}Always{{- end -}}
{{- end -}}

{{/*
Checkov skips for an image reference, each with its reason: a digest makes "pull Always"
pointless; without one, the digest check cannot pass and the values say how to pin it.
*/}}
{{- define "tierlift.imageSkips" -}}
{{- if contains "@sha256:" . -}}
checkov.io/skip1: CKV_K8S_15=Pinned by digest, so IfNotPresent cannot run another image and saves pulls
{{- else -}}
checkov.io/skip1: CKV_K8S_43=No digest in these values; production pins one with image.digest (see the README)
{{- end -}}
{{- end -}}

{{/* Where mounted Secrets live in every container. */}}
{{- define "tierlift.secretsRoot" -}}/var/run/secrets/tierlift{{- end -}}

{{/* A NetworkPolicy peer: the release's pods of the given components. */}}
{{- define "tierlift.netpol.peer" -}}
- podSelector:
    matchExpressions:
      - {key: app.kubernetes.io/instance, operator: In, values: [{{ .release | quote }}]}
      - {key: app.kubernetes.io/component, operator: In, values: {{ .components | toJson }}}
{{- end -}}

{{/* TIERLIFT_TRUSTED_PRODUCERS of a bus service: "role=UKEY,..." of the roles it takes events
from, and the keys rotated out (nats.auth.retiredProducers, "role=UKEY@<ISO time>"). */}}
{{- define "tierlift.trustedProducers" -}}
{{- $auth := .root.Values.nats.auth -}}
{{- $keys := dict "router" $auth.routerNkey "ledger" $auth.ledgerNkey "assessor" $auth.assessorNkey -}}
{{- $trusts := dict "ledger" (list "router" "assessor") "router" (list "ledger" "assessor") "assessor" (list "router" "ledger") -}}
{{- $entries := list -}}
{{- range $role := index $trusts .component -}}
{{- if index $keys $role -}}
{{- $entries = append $entries (printf "%s=%s" $role (index $keys $role)) -}}
{{- end -}}
{{- end -}}
{{- join "," (concat $entries ($auth.retiredProducers | default list)) -}}
{{- end -}}


{{/* The components that run a Tierlift service (each serves /metrics when metrics.enabled), as
their pods are labelled: in `combined`, the request-path process stands for those it hosts. */}}
{{- define "tierlift.serviceComponents" -}}
{{- $components := list "router" "classifier" "ledger" -}}
{{- if .Values.assessor.enabled }}{{- $components = append $components "assessor" }}{{- end }}
{{- if .Values.gateway.enabled }}{{- $components = append $components "gateway" }}{{- end }}
{{- range $name, $a := .Values.adapters }}{{- if $a }}{{- $components = append $components (printf "adapter-%s" $name) }}{{- end }}{{- end }}
{{- include "tierlift.podComponents" (dict "root" . "components" $components) -}}
{{- end -}}

{{/* The adapters the request-path process hosts in `combined`: every enabled one but llama.cpp's,
whose native model would share the process's CPU (as `tierlift serve --components all`). */}}
{{- define "tierlift.hostedAdapters" -}}
{{- $hosted := list -}}
{{- if eq .Values.topology "combined" -}}
{{- range $name, $a := .Values.adapters }}{{- if and $a (ne $a.backend "llamacpp") }}{{- $hosted = append $hosted $name }}{{- end }}{{- end }}
{{- end -}}
{{- toJson $hosted -}}
{{- end -}}

{{/* The components that live in the request-path process ("requestpath") in `combined`; none in `microservices`. */}}
{{- define "tierlift.hostedComponents" -}}
{{- $hosted := list -}}
{{- if eq .Values.topology "combined" -}}
{{- $hosted = list "router" "classifier" "gateway" -}}
{{- range (include "tierlift.hostedAdapters" . | fromJsonArray) }}{{- $hosted = append $hosted (printf "adapter-%s" .) }}{{- end }}
{{- end -}}
{{- toJson $hosted -}}
{{- end -}}

{{/* Components (dict: root, components) as their pods are labelled: JSON list, in order, each once. */}}
{{- define "tierlift.podComponents" -}}
{{- $hosted := include "tierlift.hostedComponents" .root | fromJsonArray -}}
{{- $pods := list -}}
{{- range .components }}{{- $pods = append $pods (ternary "requestpath" . (has . $hosted)) }}{{- end }}
{{- toJson (uniq $pods) -}}
{{- end -}}

{{- define "tierlift.consoleSecret" -}}
{{- .Values.gateway.console.existingSecret | default (printf "%s-console" (include "tierlift.fullname" .)) -}}
{{- end -}}
