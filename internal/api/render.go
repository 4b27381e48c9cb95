package api

import (
	"encoding/json"
	"net/http"
)

// problemJSON renders a problem document keeping the problem+json type.
type problemJSON struct{ body any }

func (p problemJSON) Render(w http.ResponseWriter) error {
	return json.NewEncoder(w).Encode(p.body)
}

func (p problemJSON) WriteContentType(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/problem+json")
}
