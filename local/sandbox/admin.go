package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// The admin API is for tests and people, never for the code under test: it
// reads the call log, installs faults and moves the clock. Services add
// their own endpoints under /_sandbox/<service>/.
func (s *Server) adminMux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /_sandbox/health", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]any{"status": "ok", "services": s.Services(), "now": s.clock.Now(), "region": s.opts.Region, "account": s.opts.Account})
	})
	m.HandleFunc("GET /_sandbox/accounts", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]any{"accounts": s.Accounts()})
	})
	m.HandleFunc("POST /_sandbox/accounts", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Account string `json:"account"`
		}
		if err := ReadJSON(r, &req); err != nil {
			WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if err := s.AddAccount(req.Account); err != nil {
			WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		WriteJSON(w, http.StatusOK, map[string]any{"accounts": s.Accounts()})
	})
	m.HandleFunc("GET /_sandbox/calls", func(w http.ResponseWriter, r *http.Request) {
		since, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
		calls, err := s.calls.Since(since)
		var ev *EvictedError
		if errors.As(err, &ev) {
			// Gone: the calls asked for are no longer all there; say how many
			// were evicted and where the log now starts.
			WriteJSON(w, http.StatusGone, map[string]any{"error": err.Error(), "evicted": ev.Evicted, "oldest": ev.Oldest})
			return
		}
		WriteJSON(w, http.StatusOK, calls)
	})
	m.HandleFunc("DELETE /_sandbox/calls", func(w http.ResponseWriter, r *http.Request) {
		s.calls.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("GET /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, s.faults.List())
	})
	m.HandleFunc("POST /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if err := ReadJSON(r, &f); err != nil {
			WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		added, err := s.faults.Add(f)
		if err != nil {
			WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		WriteJSON(w, http.StatusCreated, added)
	})
	m.HandleFunc("DELETE /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		s.faults.Clear()
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("DELETE /_sandbox/faults/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.Atoi(r.PathValue("id"))
		if !s.faults.Remove(id) {
			WriteJSON(w, http.StatusNotFound, map[string]string{"error": "no such fault"})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("GET /_sandbox/clock", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, s.clockView())
	})
	m.HandleFunc("POST /_sandbox/clock", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Advance   string     `json:"advance"`   // a Go duration: "72h"
			AdvanceTo *time.Time `json:"advanceTo"` // never moves back
			Set       *time.Time `json:"set"`       // may move back
		}
		if err := ReadJSON(r, &req); err != nil {
			WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		switch {
		case req.Advance != "":
			d, err := time.ParseDuration(req.Advance)
			if err != nil {
				WriteJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("advance: %v", err)})
				return
			}
			s.clock.Advance(d)
		case req.AdvanceTo != nil:
			s.clock.AdvanceTo(*req.AdvanceTo)
		case req.Set != nil:
			s.clock.Set(*req.Set)
		default:
			WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "want advance, advanceTo or set"})
			return
		}
		s.MarkDirty()
		WriteJSON(w, http.StatusOK, s.clockView())
	})
	return m
}

func (s *Server) clockView() map[string]any {
	return map[string]any{"now": s.clock.Now(), "offset": s.clock.Offset().String()}
}

// WriteJSON writes v as a JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	_ = enc.Encode(v)
}

// ReadJSON decodes a request body strictly.
func ReadJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode request: %w", err)
	}
	return nil
}
