package elastic

import "embed"

// templateFiles are the component templates of the indices and the mapping
// of the registry's index, kept as data (templates/*.json).
//
//go:embed templates/*.json
var templateFiles embed.FS
