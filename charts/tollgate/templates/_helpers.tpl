{{- define "tollgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tollgate.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tollgate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The image reference: repository@digest when a digest pins one build, else repository:tag. */}}
{{- define "tollgate.image" -}}
{{- with .Values.image.digest -}}
{{- printf "%s@%s" $.Values.image.repository . -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "tollgate.serviceAccountName" -}}
{{- default (include "tollgate.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* Secret holding the webhook URL: the user's, the chart's, or none (notifications off). */}}
{{- define "tollgate.webhookSecretName" -}}
{{- $hook := .Values.notifications.webhook -}}
{{- if and $hook.url $hook.existingSecret -}}
{{- fail "notifications.webhook: set url or existingSecret, not both" -}}
{{- else if and $hook.url (not (regexMatch "^https?://[^/\\s]+" $hook.url)) -}}
{{- /* Checked here rather than in values.schema.json, whose errors would print the secret. */ -}}
{{- fail "notifications.webhook.url must start with http:// or https:// and a host (the value is not shown: it is a secret)" -}}
{{- else if $hook.existingSecret -}}
{{- $hook.existingSecret -}}
{{- else if $hook.url -}}
{{- printf "%s-webhook" (include "tollgate.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tollgate.watchNamespace" -}}
{{- default .Release.Namespace .Values.watchNamespace -}}
{{- end -}}

{{/* The rules the operator needs on the namespaces it watches; one comment per rule. */}}
{{- define "tollgate.workloadRules" -}}
# Watch Rollouts: the objects this operator reconciles.
- apiGroups: ["tollgate.dev"]
  resources: ["rollouts"]
  verbs: ["get", "list", "watch"]
# Read the policies Rollouts name (spec.policyRef) and watch them to requeue those Rollouts.
# ClusterRolloutPolicies are cluster-scoped: with rbac.scope namespace they are read through
# the ClusterRole in rbac.yaml.
- apiGroups: ["tollgate.dev"]
  resources: ["rolloutpolicies", "clusterrolloutpolicies"]
  verbs: ["get", "list", "watch"]
# Add and remove a Rollout's finalizers (metadata.finalizers): tollgate.dev/adoption (its deletion
# first scales an adopted Deployment back) and tollgate.dev/undeployment (its deletion first tells
# the Pact Broker the recorded version no longer runs); the spec is never written.
- apiGroups: ["tollgate.dev"]
  resources: ["rollouts"]
  verbs: ["patch"]
# Write each Rollout's status (the record of every decision).
- apiGroups: ["tollgate.dev"]
  resources: ["rollouts/status"]
  verbs: ["get", "update", "patch"]
# Own the stable, canary and baseline Deployments (server-side apply creates and patches them)
# and read a workloadRef's Deployment template. Never deletes: owner references clean up.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Find each Deployment's current ReplicaSet, whose pod-template-hash the fleet check expects.
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["list"]
# List the pods of each track to ask them what they run (the fleet and smoke checks).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
# Own the Services that carry traffic (replica ratio) or back an HTTPRoute's weights.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Read broker and Prometheus credentials from the Secrets a Rollout names.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# Shift traffic by setting the backend weights of a Gateway API HTTPRoute or GRPCRoute.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes", "grpcroutes"]
  verbs: ["get", "patch"]
# Emit an Event for every decision (the Events API aggregates repeats with a patch).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}

{{/* The destinations file: each destination's settings, and where its URL is mounted. */}}
{{- define "tollgate.destinationsFile" -}}
destinations:
{{- range .Values.notifications.destinations }}
{{- if not .existingSecret }}
{{- fail (printf "notifications.destinations[%s]: existingSecret (the Secret holding the URL) is required" .name) }}
{{- end }}
  - name: {{ .name | quote }}
    format: {{ .format | default "json" | quote }}
    urlFile: /etc/tollgate/destinations/{{ .name }}/url
    default: {{ .default | default false }}
    {{- with .events }}
    events: {{ toJson . }}
    {{- end }}
    {{- with .namespaces }}
    namespaces: {{ toJson . }}
    {{- end }}
    {{- with .timeoutSeconds }}
    timeout: {{ . }}s
    {{- end }}
    {{- with .attempts }}
    attempts: {{ . }}
    {{- end }}
    {{- if .routingKeySecretKey }}
    routingKeyFile: /etc/tollgate/destinations/{{ .name }}/routing-key
    {{- end }}
    {{- with .templates }}
    templates: {{ toJson . }}
    {{- end }}
{{- end }}
{{- end -}}
