package esfake

import (
	"encoding/json"
)

// mget is a realtime multi-get by ids.
func (f *Server) mget(index string, body []byte) (any, error) {
	var req struct {
		IDs []string `json:"ids"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.IDs) == 0 {
		return nil, bad("fake mget: want ids")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ix, ok := f.indices[index]
	docs := make([]any, len(req.IDs))
	for i, id := range req.IDs {
		switch d := (*fakeDoc)(nil); {
		case !ok:
			docs[i] = map[string]any{"_index": index, "_id": id,
				"error": map[string]any{"type": "index_not_found_exception", "reason": "no such index [" + index + "]"}}
		case ix.docs[id] == nil:
			docs[i] = map[string]any{"_index": index, "_id": id, "found": false}
		default:
			d = ix.docs[id]
			docs[i] = map[string]any{"_index": index, "_id": id, "_version": d.ver, "_seq_no": d.seqNo, "_primary_term": 1, "found": true}
		}
	}
	return map[string]any{"docs": docs}, nil
}
