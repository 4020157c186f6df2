package simhttp

import (
	"encoding/json"
	"net/http"
)

// WriteJSON answers a control call of a simulator's console with v as
// JSON. An encoding error means the client went away; there is no one left
// to tell.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// DecodeJSON reads a control call's JSON body of at most 1 MiB into v; a
// body that does not decode is answered 400 with the reason, and false
// returned.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON body: " + err.Error()})
		return false
	}
	return true
}
