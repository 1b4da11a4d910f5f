{{/* Least privilege for the fulcrum binary: only the verbs its components
use. Reads come through informers (get/list/watch); writes are limited to
what the controller owns: VirtualService route weights, ModelRollout status,
the ModelRollout spec on promotion (stable := candidate), the replicas of
the versions' Deployments or HPAs (spec.scaling), Notifiers' status, and
the Jobs of Job gates (spec.gates). With
watchNamespaces the namespaced rules are granted by a Role in each watched
namespace instead of cluster-wide. */ -}}
{{- define "fulcrum.namespacedRules" -}}
- apiGroups: ["fulcrum.dev"]
  resources: ["modelrollouts"]
  # update: promotion moves spec.candidate into spec.stable; the admin API
  # records intents on spec.
  verbs: ["get", "list", "watch", "update", "patch"]
- apiGroups: ["fulcrum.dev"]
  resources: ["modelrollouts/status"]
  verbs: ["get", "update", "patch"]
- apiGroups: ["fulcrum.dev"]
  resources: ["metrictemplates"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["networking.istio.io"]
  resources: ["virtualservices"]
  # update only: weights are written with optimistic concurrency.
  verbs: ["get", "list", "watch", "update"]
- apiGroups: ["networking.istio.io"]
  resources: ["destinationrules"]
  verbs: ["get", "list", "watch"]
# Gateway API routes (spec.httpRoute, spec.grpcRoute): backendRef weights,
# written with optimistic concurrency like VirtualServices.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes", "grpcroutes"]
  verbs: ["get", "list", "watch", "update"]
- apiGroups: [""]
  resources: ["pods", "services"]
  verbs: ["get", "list", "watch"]
# spec.scaling: each version's Deployment and the HPA targeting it. patch
# only: one field (replicas, minReplicas, maxReplicas) at a time.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "patch"]
{{- if .Values.controller.enabled }}
# MetricTemplates' spec.provider.httpClientConfigSecretRef and the headers
# of HTTP gates (spec.gates[].http.headers[].valueFrom): one Secret read
# by name with a direct GET when it is needed; Secrets are never listed
# or watched (no cache of every Secret in the cluster).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# spec.gates[].job: the Jobs of Job gates, created in the rollout's
# namespace, watched (only those labelled fulcrum.dev/gate are cached),
# and deleted when a rollback or a person's action cancels one that still
# runs.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
# spec.readiness.warmup.requests.configMap: the warm-up request bodies, one
# ConfigMap read by name when a warm-up gate starts holding.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get"]
# Notifiers (docs/notifications.md): read through the cache; their status
# (deliveries, Ready) written in batches, update only.
- apiGroups: ["fulcrum.dev"]
  resources: ["notifiers"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["fulcrum.dev"]
  resources: ["notifiers/status"]
  verbs: ["get", "update"]
{{- end }}
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
{{- define "fulcrum.clusterRules" -}}
{{- if .Values.controller.enabled }}
# ClusterNotifiers: read through the cache, their status written in
# batches; a ClusterNotifier's namespaceSelector reads namespaces' labels.
- apiGroups: ["fulcrum.dev"]
  resources: ["clusternotifiers"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["fulcrum.dev"]
  resources: ["clusternotifiers/status"]
  verbs: ["get", "update"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- if .Values.admin.enabled }}
# Admin API: authenticate bearer tokens and authorize each request against
# the caller's own RBAC.
- apiGroups: ["authentication.k8s.io"]
  resources: ["tokenreviews"]
  verbs: ["create"]
- apiGroups: ["authorization.k8s.io"]
  resources: ["subjectaccessreviews"]
  verbs: ["create"]
{{- end }}
{{- if include "fulcrum.webhookSelfSigned" . }}
# Webhook in self-signed mode writes its CA bundle into its own
# configurations, and nothing else.
- apiGroups: ["admissionregistration.k8s.io"]
  resources: ["validatingwebhookconfigurations"]
  resourceNames: ["fulcrum-modelrollouts", "fulcrum-virtualservice-guard"]
  verbs: ["get", "update", "patch"]
{{- end }}
{{- end }}
