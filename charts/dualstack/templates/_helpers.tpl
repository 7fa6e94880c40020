{{/* Common labels of every object. */}}
{{- define "dualstack.labels" -}}
app.kubernetes.io/part-of: dualstack
{{- end -}}

{{/* Labels of the controller's objects. */}}
{{- define "dualstack.controllerLabels" -}}
app.kubernetes.io/name: dualstack-controller
{{ include "dualstack.labels" . }}
{{- end -}}

{{/* Labels of the agent's objects. */}}
{{- define "dualstack.agentLabels" -}}
app.kubernetes.io/name: dualstack-agent
{{ include "dualstack.labels" . }}
{{- end -}}

{{- define "dualstack.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "dualstack.leaseNamespace" -}}
{{ .Values.leaseNamespace | default .Values.namespace }}
{{- end -}}
