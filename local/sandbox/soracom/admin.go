package soracom

import (
	"fmt"
	"net/http"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Admin implements sandbox.Administered, under /_sandbox/soracom/. Every
// answer is a view: no AuthKey, no secret access key.
//
//	POST  /operators            OperatorConfig → OperatorView (its endpoint)
//	GET   /operators            every operator
//	GET   /operators/{id}       one
//	GET   /operators/{id}/calls every API call it answered
//	PATCH /operators/{id}       {"fail":Failure} queues a failure; {"clearFailures":true} drops them;
//	                            {"permissions":{"<SAM user>":[…]}} changes a user's permissions
func (s *Service) Admin() http.Handler {
	m := http.NewServeMux()
	bad := func(w http.ResponseWriter, err error) {
		sandbox.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	}
	find := func(w http.ResponseWriter, r *http.Request) (*Operator, bool) {
		o, ok := s.Operator(r.PathValue("id"))
		if !ok {
			sandbox.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "no such operator"})
		}
		return o, ok
	}
	m.HandleFunc("POST /operators", func(w http.ResponseWriter, r *http.Request) {
		var cfg OperatorConfig
		if err := sandbox.ReadJSON(r, &cfg); err != nil {
			bad(w, err)
			return
		}
		o, err := s.AddOperator(cfg)
		if err != nil {
			bad(w, err)
			return
		}
		sandbox.WriteJSON(w, http.StatusCreated, o.View())
	})
	m.HandleFunc("GET /operators", func(w http.ResponseWriter, r *http.Request) {
		out := []OperatorView{}
		for _, o := range s.Operators() {
			out = append(out, o.View())
		}
		sandbox.WriteJSON(w, http.StatusOK, out)
	})
	m.HandleFunc("GET /operators/{id}", func(w http.ResponseWriter, r *http.Request) {
		if o, ok := find(w, r); ok {
			sandbox.WriteJSON(w, http.StatusOK, o.View())
		}
	})
	m.HandleFunc("GET /operators/{id}/calls", func(w http.ResponseWriter, r *http.Request) {
		if o, ok := find(w, r); ok {
			sandbox.WriteJSON(w, http.StatusOK, o.Calls())
		}
	})
	m.HandleFunc("PATCH /operators/{id}", func(w http.ResponseWriter, r *http.Request) {
		o, ok := find(w, r)
		if !ok {
			return
		}
		var req struct {
			Fail          *Failure            `json:"fail"`
			ClearFailures bool                `json:"clearFailures"`
			Permissions   map[string][]string `json:"permissions"`
		}
		if err := sandbox.ReadJSON(r, &req); err != nil {
			bad(w, err)
			return
		}
		for user, perms := range req.Permissions {
			if err := o.SetPermissions(user, perms); err != nil {
				bad(w, err)
				return
			}
		}
		if req.ClearFailures {
			o.ClearFailures()
		}
		if req.Fail != nil {
			if req.Fail.Status < 400 || req.Fail.Status > 599 {
				bad(w, fmt.Errorf("fail.status %d is not an HTTP error status (400–599)", req.Fail.Status))
				return
			}
			o.Fail(*req.Fail)
		}
		sandbox.WriteJSON(w, http.StatusOK, o.View())
	})
	return m
}
