// Package pipelines holds the pipeline definitions and Elasticsearch templates
// as data, embedded into the binary.
package pipelines

import "embed"

// FS holds every definition file of this folder, the event schema, and the
// Elasticsearch templates (elasticsearch/*.json).
//
//go:embed *.yaml *.json elasticsearch/*.json
var FS embed.FS

// Default is the name of the definition chatreport runs when none is configured.
const Default = "default.yaml"
