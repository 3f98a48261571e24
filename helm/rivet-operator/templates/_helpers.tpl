{{/* Chart name, possibly overridden. */}}
{{- define "rivet-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's resources (63 characters at most: some name fields are DNS labels).
The release name alone when it already contains the chart name.
*/}}
{{- define "rivet-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Name of the cluster-scoped objects (ClusterRole, ClusterRoleBinding): they are shared by every
namespace, so two releases of the same name in two namespaces must not collide.
*/}}
{{- define "rivet-operator.clusterName" -}}
{{- printf "%s-%s" (include "rivet-operator.fullname" .) .Release.Namespace | trunc 253 | trimSuffix "-" }}
{{- end }}

{{/* chart label value: name-version */}}
{{- define "rivet-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "rivet-operator.labels" -}}
helm.sh/chart: {{ include "rivet-operator.chart" . }}
{{ include "rivet-operator.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rivet
{{- end }}

{{/* Selector labels (immutable in a Deployment: never add to them). */}}
{{- define "rivet-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rivet-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "rivet-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rivet-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image: repository@digest, else repository:tag (tag defaults to appVersion). */}}
{{- define "rivet-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/* The image of the Jobs the operator creates (RIVET_IMAGE). */}}
{{- define "rivet-operator.jobImage" -}}
{{- .Values.jobImage | default (include "rivet-operator.image" .) }}
{{- end }}

{{/* The watched namespaces, de-duplicated, as a list (empty: cluster-wide). */}}
{{- define "rivet-operator.watchNamespaces" -}}
{{- toJson (.Values.watchNamespaces | default list | uniq) }}
{{- end }}

{{/*
RBAC rules on what the operator serves and creates (namespaced resources), each verb one the operator's
code calls (operator/rivet_operator/runtime/client.py and kopf's watches): tests/unit/test_chart.py pins
the exact set. Never Secrets (Jobs get them by reference), never pods/log (results come from
termination messages in pod status), never patch/update of our kinds' specs (only users write those).
*/}}
{{- define "rivet-operator.rules" -}}
# Our kinds: kopf lists and watches them, each reconcile reads the object (get).
- apiGroups: ["rivet.dev"]
  resources: ["rivetexports", "rivetvalidations", "rivetschedules"]
  verbs: ["get", "list", "watch"]
# A RivetSchedule's runs: one RivetExport created per tick, deleted beyond the history limits (or replaced).
- apiGroups: ["rivet.dev"]
  resources: ["rivetexports"]
  verbs: ["create", "delete"]
# Our status, written as a merge patch of the status subresource only.
- apiGroups: ["rivet.dev"]
  resources: ["rivetexports/status", "rivetvalidations/status", "rivetschedules/status"]
  verbs: ["get", "patch"]
# RivetLedger: the chunk commit records of a run, operator-only state (no user role grants it). A shard is
# created per run, listed by the run's labels, deleted with the run's cleanup.
- apiGroups: ["rivet.dev"]
  resources: ["rivetledgers"]
  verbs: ["get", "list", "watch", "create", "delete"]
# The records live in the ledger's status (patched per committed chunk).
- apiGroups: ["rivet.dev"]
  resources: ["rivetledgers/status"]
  verbs: ["get", "patch", "update"]
# The plan, chunk, finalize and validate Jobs: kopf watches ours (label selector), a reconcile lists them,
# reads one back on a name conflict (409), deletes finished ones.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
# Their pods: the termination message in pod status carries each Job's result (no pods/log).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
# The finalize transport and rendered configuration: created, listed by label, read back on a name
# conflict, replaced (update) or patched, deleted with the run.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "create", "update", "patch", "delete"]
# User-facing Events on our resources (ours and kopf's, core/v1). patch: a repeated one (a chunk retried
# again) updates its Event's count instead of adding another.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* kopf's cluster observation: CRDs (always), namespaces (only used when watching a list of namespaces). */}}
{{- define "rivet-operator.crdRules" -}}
# kopf notices our CRDs appearing and going (read-only; cluster-scoped by nature).
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
{{- end }}
