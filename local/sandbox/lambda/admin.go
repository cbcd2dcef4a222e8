package lambda

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Seconds is a timeout in the admin API: a number of seconds (3, 0.5) or a
// Go duration ("1500ms").
type Seconds time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Seconds) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case float64:
		*d = Seconds(time.Duration(v * float64(time.Second)))
	case string:
		p, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("timeout: %w", err)
		}
		*d = Seconds(p)
	case nil:
		*d = 0
	default:
		return fmt.Errorf("timeout: want seconds or a duration, got %s", b)
	}
	return nil
}

// FunctionRequest is the body of PUT /functions/{name}.
type FunctionRequest struct {
	Path           string            `json:"path"`
	Env            map[string]string `json:"env,omitempty"`
	Timeout        Seconds           `json:"timeout,omitempty"`
	MemoryMB       int               `json:"memoryMB,omitempty"`
	Role           string            `json:"role,omitempty"`
	Handler        string            `json:"handler,omitempty"`
	MaxConcurrency int               `json:"maxConcurrency,omitempty"`
}

// Admin implements sandbox.Administered:
//
//	PUT    /functions/{name} {"path","env","timeout","memoryMB","role","handler","maxConcurrency"} registers a function;
//	GET    /functions lists functions with their instances (pids);
//	GET    /functions/{name} shows one;
//	GET    /functions/{name}/logs returns its captured log lines (?requestId= filters);
//	DELETE /functions/{name}/logs forgets them;
//	DELETE /functions/{name}/instances stops its free instances (the next invoke starts cold);
//	GET    /urls lists the function URLs (id, function, https://<url-id>.lambda-url.<region>.on.aws/);
//	GET    /policies lists each function's policy statements.
func (s *Service) Admin() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /urls", func(w http.ResponseWriter, r *http.Request) {
		type view struct {
			URLConfig
			URL string `json:"url"`
		}
		out := []view{}
		for _, u := range s.URLs() {
			out = append(out, view{u, u.URL()})
		}
		sandbox.WriteJSON(w, http.StatusOK, out)
	})
	m.HandleFunc("GET /policies", func(w http.ResponseWriter, r *http.Request) {
		sandbox.WriteJSON(w, http.StatusOK, s.Permissions())
	})
	m.HandleFunc("PUT /functions/{name}", func(w http.ResponseWriter, r *http.Request) {
		var req FunctionRequest
		if err := sandbox.ReadJSON(r, &req); err != nil {
			sandbox.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		name := r.PathValue("name")
		_, existed := s.function(name)
		err := s.Register(FunctionConfig{Name: name, Path: req.Path, Env: req.Env, Timeout: time.Duration(req.Timeout),
			MemoryMB: req.MemoryMB, Role: req.Role, Handler: req.Handler, MaxConcurrency: req.MaxConcurrency})
		if err != nil {
			status := http.StatusBadRequest
			var e *sandbox.Error
			if errors.As(err, &e) {
				status = e.Status
			}
			sandbox.WriteJSON(w, status, map[string]string{"error": err.Error()})
			return
		}
		v, _ := s.Function(name)
		status := http.StatusCreated
		if existed {
			status = http.StatusOK
		}
		sandbox.WriteJSON(w, status, v)
	})
	m.HandleFunc("GET /functions", func(w http.ResponseWriter, r *http.Request) {
		sandbox.WriteJSON(w, http.StatusOK, s.Functions())
	})
	m.HandleFunc("GET /functions/{name}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := s.Function(r.PathValue("name"))
		if !ok {
			notFound(w)
			return
		}
		sandbox.WriteJSON(w, http.StatusOK, v)
	})
	m.HandleFunc("GET /functions/{name}/logs", func(w http.ResponseWriter, r *http.Request) {
		lines, ok := s.Logs(r.PathValue("name"))
		if !ok {
			notFound(w)
			return
		}
		if id := r.URL.Query().Get("requestId"); id != "" {
			kept := lines[:0]
			for _, l := range lines {
				if l.RequestID == id {
					kept = append(kept, l)
				}
			}
			lines = kept
		}
		if n, err := strconv.Atoi(r.URL.Query().Get("tail")); err == nil && n >= 0 && n < len(lines) {
			lines = lines[len(lines)-n:]
		}
		sandbox.WriteJSON(w, http.StatusOK, lines)
	})
	m.HandleFunc("DELETE /functions/{name}/logs", func(w http.ResponseWriter, r *http.Request) {
		if !s.ClearLogs(r.PathValue("name")) {
			notFound(w)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("DELETE /functions/{name}/instances", func(w http.ResponseWriter, r *http.Request) {
		if err := s.StopInstances(r.PathValue("name")); err != nil {
			notFound(w)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return m
}

func notFound(w http.ResponseWriter) {
	sandbox.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "no such function"})
}
