{{/* Parts of the ValidatingWebhookConfigurations (webhooks.yaml). */}}

{{- define "fulcrum.webhookMeta" -}}
{{- if eq .Values.webhook.certificates "certManager" }}
annotations:
  # cert-manager's CA injector copies the Certificate's CA into every caBundle.
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "fulcrum.fullname" . }}-webhook
{{- end }}
labels:
  {{- include "fulcrum.labels" . | nindent 2 }}
{{- end -}}
{{- define "fulcrum.caBundle" -}}
{{- if eq .Values.webhook.certificates "secret" }}
caBundle: {{ .Values.webhook.secret.caBundle }}
{{- end -}}
{{- end -}}
{{- define "fulcrum.webhookNamespaces" -}}
namespaceSelector:
  matchExpressions:
    - {key: fulcrum.dev/webhook, operator: NotIn, values: ["skip"]}
    {{- with .excluded }}
    - {key: kubernetes.io/metadata.name, operator: NotIn, values: {{ toJson . }}}
    {{- end }}
    {{- with .watched }}
    - {key: kubernetes.io/metadata.name, operator: In, values: {{ toJson . }}}
    {{- end }}
{{- end -}}
