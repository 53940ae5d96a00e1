{{/* Names, labels and the small decisions every template shares. */}}

{{- define "lockgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lockgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "lockgate.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "lockgate.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "lockgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lockgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "lockgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "lockgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: lockgate
{{- end -}}

{{- define "lockgate.serviceAccountName" -}}
{{- default (include "lockgate.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The operator's Kubernetes username: the only identity allowed to change images in gated namespaces. */}}
{{- define "lockgate.identity" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "lockgate.serviceAccountName" . }}
{{- end -}}

{{- define "lockgate.stampSecretName" -}}
{{- default (printf "%s-stamp-key" (include "lockgate.fullname" .)) .Values.stampKey.secretName -}}
{{- end -}}

{{- define "lockgate.webhookServiceName" -}}
{{- include "lockgate.fullname" . -}}
{{- end -}}

{{- define "lockgate.webhookCertSecret" -}}
{{- if eq (include "lockgate.certSource" .) "existingSecret" -}}
{{- .Values.webhook.certificate.existingSecret -}}
{{- else -}}
{{- printf "%s-webhook-tls" (include "lockgate.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* certManager | generated | existingSecret, resolving `auto` by the cluster's APIs. */}}
{{- define "lockgate.certSource" -}}
{{- $source := .Values.webhook.certificate.source -}}
{{- if eq $source "auto" -}}
{{- if .Capabilities.APIVersions.Has "cert-manager.io/v1" -}}certManager{{- else -}}generated{{- end -}}
{{- else -}}
{{- $source -}}
{{- end -}}
{{- end -}}

{{- define "lockgate.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "lockgate.sqliteClaim" -}}
{{- default (printf "%s-audit" (include "lockgate.fullname" .)) .Values.audit.sqlite.persistence.existingClaim -}}
{{- end -}}

{{- define "lockgate.usesSqlite" -}}
{{- if has "sqlite" .Values.audit.sinks -}}true{{- end -}}
{{- end -}}

{{- define "lockgate.usesAws" -}}
{{- if or (has "dynamodb" .Values.audit.sinks) (has "s3" .Values.audit.sinks) -}}true{{- end -}}
{{- end -}}

{{/* Checks that values cannot express in the schema. */}}
{{- define "lockgate.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: without it every replica would act" -}}
{{- end -}}
{{- if and (has "dynamodb" .Values.audit.sinks) (not .Values.audit.dynamodb.table) -}}
{{- fail "the dynamodb audit sink needs audit.dynamodb.table" -}}
{{- end -}}
{{- if and (has "s3" .Values.audit.sinks) (not .Values.audit.s3.bucket) -}}
{{- fail "the s3 audit sink needs audit.s3.bucket" -}}
{{- end -}}
{{- if and (eq (include "lockgate.certSource" .) "existingSecret") (or (not .Values.webhook.certificate.existingSecret) (not .Values.webhook.certificate.caBundle)) -}}
{{- fail "webhook.certificate.source=existingSecret needs webhook.certificate.existingSecret and webhook.certificate.caBundle" -}}
{{- end -}}
{{- end -}}
