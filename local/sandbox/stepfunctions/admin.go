package stepfunctions

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Admin implements sandbox.Administered, under /_sandbox/states/:
//
//	POST /state-machines   {"name", "definitionFile"|"definition", "substitutions", "roleArn"} → {"stateMachineArn"}
//	GET  /state-machines   every state machine, with its definition
//	GET  /executions       every execution, newest first
//	GET  /executions/{arn}           one execution (DescribeExecution)
//	GET  /executions/{arn}/history   its history, oldest first, as GetExecutionHistory's events
//	GET  /task-tokens      every callback Task's token: pending ones first, with the real time their shortened timeout fires
func (s *Service) Admin() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("POST /state-machines", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name           string            `json:"name"`
			DefinitionFile string            `json:"definitionFile"`
			Definition     json.RawMessage   `json:"definition"` // the JSON itself, or a string holding it
			Substitutions  map[string]string `json:"substitutions"`
			RoleARN        string            `json:"roleArn"`
		}
		if err := sandbox.ReadJSON(r, &req); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		var (
			arn string
			err error
		)
		switch {
		case req.DefinitionFile != "" && len(req.Definition) > 0:
			err = errors.New("give definitionFile or definition, not both")
		case req.DefinitionFile != "":
			arn, err = s.RegisterFile(r.Context(), req.Name, req.DefinitionFile, req.Substitutions, req.RoleARN)
		case len(req.Definition) > 0:
			def := string(req.Definition)
			var str string
			if json.Unmarshal(req.Definition, &str) == nil {
				def = str
			}
			arn, err = s.Register(r.Context(), req.Name, def, req.Substitutions, req.RoleARN)
		default:
			err = errors.New("want definitionFile or definition")
		}
		if err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		sandbox.WriteJSON(w, http.StatusCreated, map[string]string{"stateMachineArn": arn})
	})
	m.HandleFunc("GET /state-machines", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		out := make([]stateMachine, 0, len(s.machines))
		for _, sm := range s.machines {
			out = append(out, *sm)
		}
		s.mu.Unlock()
		sandbox.WriteJSON(w, http.StatusOK, out)
	})
	m.HandleFunc("GET /executions", func(w http.ResponseWriter, r *http.Request) {
		sandbox.WriteJSON(w, http.StatusOK, s.Executions())
	})
	m.HandleFunc("GET /executions/{arn}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := s.Describe(r.PathValue("arn"))
		if !ok {
			adminError(w, http.StatusNotFound, errors.New("no such execution"))
			return
		}
		sandbox.WriteJSON(w, http.StatusOK, v)
	})
	m.HandleFunc("GET /task-tokens", func(w http.ResponseWriter, r *http.Request) {
		sandbox.WriteJSON(w, http.StatusOK, s.TaskTokens())
	})
	m.HandleFunc("GET /executions/{arn}/history", func(w http.ResponseWriter, r *http.Request) {
		h, ok := s.History(r.PathValue("arn"))
		if !ok {
			adminError(w, http.StatusNotFound, errors.New("no such execution"))
			return
		}
		sandbox.WriteJSON(w, http.StatusOK, h)
	})
	return m
}

func adminError(w http.ResponseWriter, status int, err error) {
	sandbox.WriteJSON(w, status, map[string]string{"error": err.Error()})
}

// snapshot is the state kept across restarts: state machines and
// executions with their histories. A running execution cannot survive a
// restart: it is saved as aborted.
type snapshot struct {
	Machines   []stateMachine `json:"stateMachines"`
	Executions []savedExec    `json:"executions"`
}

type savedExec struct {
	Execution
	Machine string         `json:"machine"` // ARN of the state machine as it ran
	History []HistoryEvent `json:"history"`
	// Tokens are its callback Tasks' tokens: after a restart they answer
	// TaskTimedOut (the Task is closed), not TaskDoesNotExist.
	Tokens []savedToken `json:"taskTokens,omitempty"`
}

type savedToken struct {
	Token  string `json:"taskToken"`
	State  string `json:"state"`
	Status string `json:"status"`
}

// Snapshot implements sandbox.Snapshotter.
func (s *Service) Snapshot() (json.RawMessage, error) {
	s.mu.Lock()
	var snap snapshot
	for _, sm := range s.machines {
		snap.Machines = append(snap.Machines, *sm)
	}
	all := make([]*execution, 0, len(s.execs))
	for _, e := range s.execs {
		all = append(all, e)
	}
	s.mu.Unlock()
	tokens := map[string][]savedToken{}
	for _, tt := range s.TaskTokens() {
		if tt.Status == "PENDING" { // its execution is saved as aborted
			tt.Status = Aborted
		}
		tokens[tt.ExecutionARN] = append(tokens[tt.ExecutionARN], savedToken{Token: tt.Token, State: tt.State, Status: tt.Status})
	}
	for _, e := range all {
		v := e.view()
		h := e.events()
		if v.Status == Running {
			v.Status, v.Stop = Aborted, s.srv.Clock().Now()
			v.Error, v.Cause = "Sandbox.Stopped", "The sandbox stopped while the execution ran."
		}
		snap.Executions = append(snap.Executions, savedExec{Execution: v, Machine: e.machine.ARN, History: h, Tokens: tokens[e.arn]})
	}
	return json.Marshal(snap)
}

// Restore implements sandbox.Snapshotter.
func (s *Service) Restore(raw json.RawMessage) error {
	var snap snapshot
	if err := json.Unmarshal(raw, &snap); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cbmu.Lock()
	defer s.cbmu.Unlock()
	for i := range snap.Machines {
		sm := snap.Machines[i]
		s.machines[sm.ARN] = &sm
	}
	for _, se := range snap.Executions {
		sm, ok := s.machines[se.Machine]
		if !ok {
			sm = &stateMachine{ARN: se.Machine}
		}
		done := make(chan struct{})
		close(done)
		s.execs[se.ARN] = &execution{
			arn: se.ARN, name: se.Name, machineARN: se.StateMachineARN, machine: sm, input: se.Input,
			status: se.Status, start: se.Start, stop: se.Stop, output: se.Output, errCode: se.Error, cause: se.Cause,
			history: se.History, done: done,
		}
		for _, tt := range se.Tokens {
			s.tokens[tt.Token] = &callback{token: tt.Token, execution: se.ARN, state: tt.State, status: tt.Status}
		}
	}
	return nil
}
