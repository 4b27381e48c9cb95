// Package pipelines holds the pipeline definitions as data, embedded into the
// binary.
package pipelines

import "embed"

// FS holds every definition file of this folder.
//
//go:embed *.yaml
var FS embed.FS

// Default is the name of the definition chatreport runs when none is configured.
const Default = "default.yaml"
