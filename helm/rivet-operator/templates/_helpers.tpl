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

{{/* RBAC rules on what the operator serves and creates (namespaced resources). */}}
{{- define "rivet-operator.rules" -}}
# RivetExport / RivetValidation / RivetSchedule: read and watch them, write kopf's annotations and our status.
- apiGroups: ["rivet.dev"]
  resources: ["rivetexports", "rivetvalidations", "rivetschedules"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["rivet.dev"]
  resources: ["rivetexports/status", "rivetvalidations/status", "rivetschedules/status"]
  verbs: ["get", "patch", "update"]
# A RivetSchedule's runs: one RivetExport per tick, deleted beyond the history limits.
- apiGroups: ["rivet.dev"]
  resources: ["rivetexports"]
  verbs: ["create", "delete"]
# The plan, chunk, finalize and validate Jobs.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
# Their pods: termination messages carry each Job's result.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
# Rendered rivet.yaml and the ledger shards of committed chunks.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# User-facing Events on our resources (kopf's and ours).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* kopf's cluster observation: CRDs (always), namespaces (only used when watching a list of namespaces). */}}
{{- define "rivet-operator.crdRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
{{- end }}
