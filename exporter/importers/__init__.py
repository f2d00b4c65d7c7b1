"""Importers: canonical HALO lines from where teams already keep their traces.

`otlp_json` reads an OpenTelemetry Collector file exporter's output, `phoenix`
reads Arize Phoenix's REST API, `langfuse` Langfuse's public API. All three
write through `resume.ImportTarget`, which appends whole lines with the one
`JsonlWriter`, never writes a span twice, and keeps a checkpoint beside the
output so a re-run continues where the last one stopped.
"""
