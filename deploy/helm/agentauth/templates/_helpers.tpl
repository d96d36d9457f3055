{{- define "agentauth.fullname" -}}
{{- printf "%s-agentauth" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "agentauth.labels" -}}
app.kubernetes.io/name: agentauth
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "agentauth.selector" -}}
app.kubernetes.io/name: agentauth
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "agentauth.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "agentauth.secretName" -}}
{{- if .Values.secrets.existingSecret -}}{{ .Values.secrets.existingSecret }}{{- else -}}{{ include "agentauth.fullname" . }}{{- end -}}
{{- end -}}

{{/* Environment shared by every process; "database" picks the owner or the read-only URL. */}}
{{- define "agentauth.env" -}}
- name: AGENTAUTH_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "agentauth.secretName" .root }}
      key: {{ .database }}
- name: AGENTAUTH_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "agentauth.secretName" .root }}
      key: redis-url
{{- if .registry }}
{{- /* The registry's secrets: the verifier and the worker never read them. */}}
- name: AGENTAUTH_ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "agentauth.secretName" .root }}
      key: admin-token
- name: AGENTAUTH_KEY_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "agentauth.secretName" .root }}
      key: key-encryption-key
- name: AGENTAUTH_DPOP_NONCE_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "agentauth.secretName" .root }}
      key: dpop-nonce-secret
{{- end }}
{{- end -}}

{{- define "agentauth.probes" -}}
startupProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 2
  failureThreshold: 30
livenessProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 10
readinessProbe:
  httpGet: {path: /readyz, port: http}
  periodSeconds: 5
{{- end -}}
