{{/* The controller's Prometheus connection (values.prometheus). Credentials,
CA and client certificate are files in one projected volume at
/etc/fulcrum/prometheus, which the binary re-reads as Prometheus does; the
settings become a --prometheus-config-file in Prometheus's HTTP client
format, in a Secret the chart creates or one the user supplies, mounted at
/etc/fulcrum/prometheus-config. */ -}}

{{/* "true" when the chart renders a config file from the values. */}}
{{- define "fulcrum.prometheusRendered" -}}
{{- $p := .Values.prometheus -}}
{{- if and .Values.controller.enabled (or $p.basicAuth.secretName $p.tls.ca.secretName $p.tls.ca.configMapName $p.tls.clientCertSecretName $p.tls.serverName $p.tls.insecureSkipVerify $p.headers $p.proxyURL) -}}true{{- end -}}
{{- end -}}

{{/* The Secret holding the config file; empty when there is none. */}}
{{- define "fulcrum.prometheusConfigSecret" -}}
{{- if .Values.controller.enabled -}}
{{- if .Values.prometheus.configSecret.name -}}
{{- .Values.prometheus.configSecret.name -}}
{{- else if include "fulcrum.prometheusRendered" . -}}
{{- include "fulcrum.fullname" . }}-prometheus
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The config file's key in that Secret. */}}
{{- define "fulcrum.prometheusConfigKey" -}}
{{- if .Values.prometheus.configSecret.name -}}{{ .Values.prometheus.configSecret.key }}{{- else -}}prometheus.yaml{{- end -}}
{{- end -}}

{{/* "true" when the projected volume of credential files is needed. */}}
{{- define "fulcrum.prometheusFiles" -}}
{{- $p := .Values.prometheus -}}
{{- if and .Values.controller.enabled (or $p.bearerToken.secretName $p.basicAuth.secretName $p.tls.ca.secretName $p.tls.ca.configMapName $p.tls.clientCertSecretName) -}}true{{- end -}}
{{- end -}}

{{/* The config file the chart renders. Strings go through toJson: a JSON
string is a valid YAML scalar, whatever it contains. */}}
{{- define "fulcrum.prometheusConfig" -}}
{{- $p := .Values.prometheus -}}
# Rendered by the fulcrum chart from values.prometheus. url and timeout are
# passed as flags; the files are in /etc/fulcrum/prometheus.
{{- if $p.basicAuth.secretName }}
basic_auth:
  username_file: /etc/fulcrum/prometheus/basic-auth/username
  password_file: /etc/fulcrum/prometheus/basic-auth/password
{{- end }}
{{- if or $p.tls.ca.secretName $p.tls.ca.configMapName $p.tls.clientCertSecretName $p.tls.serverName $p.tls.insecureSkipVerify }}
tls_config:
  {{- if or $p.tls.ca.secretName $p.tls.ca.configMapName }}
  ca_file: /etc/fulcrum/prometheus/ca.crt
  {{- end }}
  {{- if $p.tls.clientCertSecretName }}
  cert_file: /etc/fulcrum/prometheus/client/tls.crt
  key_file: /etc/fulcrum/prometheus/client/tls.key
  {{- end }}
  {{- with $p.tls.serverName }}
  server_name: {{ toJson . }}
  {{- end }}
  {{- if $p.tls.insecureSkipVerify }}
  insecure_skip_verify: true
  {{- end }}
{{- end }}
{{- with $p.headers }}
http_headers:
  {{- range $name, $value := . }}
  {{ toJson $name }}:
    values: [{{ toJson (toString $value) }}]
  {{- end }}
{{- end }}
{{- with $p.proxyURL }}
proxy_url: {{ toJson . }}
{{- end }}
{{- end -}}

{{/* The projected volume's sources. */}}
{{- define "fulcrum.prometheusSources" -}}
{{- $p := .Values.prometheus -}}
{{- with $p.bearerToken.secretName }}
- secret:
    name: {{ . }}
    items:
      - {key: {{ $p.bearerToken.key }}, path: token}
{{- end }}
{{- with $p.basicAuth.secretName }}
- secret:
    name: {{ . }}
    items:
      - {key: {{ $p.basicAuth.usernameKey }}, path: basic-auth/username}
      - {key: {{ $p.basicAuth.passwordKey }}, path: basic-auth/password}
{{- end }}
{{- with $p.tls.ca.secretName }}
- secret:
    name: {{ . }}
    items:
      - {key: {{ $p.tls.ca.key }}, path: ca.crt}
{{- end }}
{{- with $p.tls.ca.configMapName }}
- configMap:
    name: {{ . }}
    items:
      - {key: {{ $p.tls.ca.key }}, path: ca.crt}
{{- end }}
{{- with $p.tls.clientCertSecretName }}
- secret:
    name: {{ . }}
    items:
      - {key: tls.crt, path: client/tls.crt}
      - {key: tls.key, path: client/tls.key}
{{- end }}
{{- end -}}

{{/* Settings that cannot work together, refused at render time rather
than by the binary at start. */}}
{{- define "fulcrum.validatePrometheus" -}}
{{- $p := .Values.prometheus -}}
{{- if and $p.bearerToken.secretName $p.basicAuth.secretName -}}
{{- fail "prometheus.bearerToken and prometheus.basicAuth are two ways to authenticate: set one" -}}
{{- end -}}
{{- if and $p.tls.ca.secretName $p.tls.ca.configMapName -}}
{{- fail "prometheus.tls.ca.secretName and prometheus.tls.ca.configMapName both name the CA bundle: set one" -}}
{{- end -}}
{{- if and $p.configSecret.name (include "fulcrum.prometheusRendered" .) -}}
{{- fail "prometheus.configSecret is a whole connection file: put basicAuth, tls, headers and proxyURL in it, or drop configSecret and let the chart render the file" -}}
{{- end -}}
{{- range $name, $_ := $p.headers -}}
{{- if eq (lower $name) "authorization" -}}
{{- fail "prometheus.headers.Authorization: Prometheus's client refuses it; use prometheus.bearerToken (or prometheus.basicAuth)" -}}
{{- end -}}
{{- end -}}
{{- end -}}
