package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox/sigv4"
)

// Options configure a Server.
type Options struct {
	Region  string // default region, us-east-1
	Account string // the server's own account, 111122223333
	// Accounts are more accounts the server holds beside Account (member
	// accounts of an organization): IAM, CloudTrail and Secrets Manager
	// keep each one's apart. AddAccount adds one later.
	Accounts  []string
	StateFile string // where state is kept across restarts; "" keeps it in memory
	Logger    *slog.Logger
	// RateLimits are AWS's request-rate quotas the server enforces in
	// real time (ratelimit.go): nil is DefaultRateLimits (AWS's figures),
	// NoRateLimits none.
	RateLimits []RateLimit
}

// Server is the sandbox: services behind one endpoint.
type Server struct {
	opts      Options
	log       *slog.Logger
	clock     *Clock
	calls     CallLog
	faults    Faults
	origins   origins // which Lambda invocation each instance runs now
	mu        sync.RWMutex
	services  map[string]Service
	extras    map[string]any // attached components that are not AWS services
	order     []string
	targets   map[string]string // X-Amz-Target prefix → service
	creds     Credentials
	observers []Observer
	dirty     chan struct{}
	saving    sync.Mutex // one SaveState at a time: they share the .tmp file
	admin     *http.ServeMux
	baseURL   string
	authz     Authorizer // nil: every authenticated call runs
	hosts     []Service  // HostRouters, in registration order
	accounts  []string   // every account, the server's own first
	limits    *limiter   // the rate limits' buckets
}

const maxBody = 16 << 20 // Lambda payloads reach 6 MB; leave room

// New returns a server with no services.
func New(opts Options) *Server {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Account == "" {
		opts.Account = "111122223333"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		clock:    NewClock(),
		services: map[string]Service{},
		extras:   map[string]any{},
		targets:  map[string]string{},
		dirty:    make(chan struct{}, 1),
		limits:   newLimiter(opts.RateLimits),
	}
	s.accounts = []string{opts.Account}
	for _, a := range opts.Accounts {
		if err := s.AddAccount(a); err != nil {
			s.log.Error("sandbox: account not added", "account", a, "err", err)
		}
	}
	s.admin = s.adminMux()
	return s
}

// Register adds a service. A service that is also Credentials becomes the
// key store, and an Observer sees every accepted call.
func (s *Server) Register(svc Service) {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := svc.Info()
	s.services[info.Name] = svc
	s.order = append(s.order, info.Name)
	if info.TargetPrefix != "" {
		s.targets[info.TargetPrefix] = info.Name
	}
	if c, ok := svc.(Credentials); ok {
		s.creds = c
	}
	if o, ok := svc.(Observer); ok {
		s.observers = append(s.observers, o)
	}
	if _, ok := svc.(HostRouter); ok {
		s.hosts = append(s.hosts, svc)
	}
	if a, ok := svc.(Administered); ok {
		s.admin.Handle("/_sandbox/"+info.Name+"/", http.StripPrefix("/_sandbox/"+info.Name, a.Admin()))
	}
}

// hostService is the service that answers requests to host, if one routes by host.
func (s *Server) hostService(host string) Service {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, svc := range s.hosts {
		if svc.(HostRouter).RoutesHost(host) {
			return svc
		}
	}
	return nil
}

// Attach adds a component that is not an AWS service (a fake Auth0 tenant
// host, SORACOM): it gets the admin API under /_sandbox/<name>/ if it is
// Administered, is closed with the server if it is a Closer, and keeps its
// state with --state if it is a Snapshotter. It answers no AWS request.
func (s *Server) Attach(name string, c any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.extras[name] = c
	s.order = append(s.order, name)
	if a, ok := c.(Administered); ok {
		s.admin.Handle("/_sandbox/"+name+"/", http.StripPrefix("/_sandbox/"+name, a.Admin()))
	}
}

// part is a registered service or an attached component.
func (s *Server) part(name string) any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if svc, ok := s.services[name]; ok {
		return svc
	}
	return s.extras[name]
}

// Service returns a registered service by signing name, for services that call each other.
func (s *Server) Service(name string) (Service, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	svc, ok := s.services[name]
	return svc, ok
}

// Clock is the sandbox clock.
func (s *Server) Clock() *Clock { return s.clock }

// Calls is the call log.
func (s *Server) Calls() *CallLog { return &s.calls }

// Faults are the fault rules in force.
func (s *Server) Faults() *Faults { return &s.faults }

// BindOrigin says that calls signed with k's access key, or made over
// connections k's process opened, come from o until the returned func is
// called: Lambda binds an instance to the invocation it runs.
func (s *Server) BindOrigin(k Binding, o Origin) (unbind func()) { return s.origins.bind(k, o) }

// OriginOfConn is the origin of a request to a component that is not AWS
// (an Auth0 tenant, a SORACOM operator): the bound process that opened its
// connection, if any.
func (s *Server) OriginOfConn(r *http.Request) (Origin, bool) {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if local == nil {
		return Origin{}, false
	}
	return connOwner(r.RemoteAddr, local.String(), s.origins.pids())
}

// SetAuthorizer makes a decide every call from now on (IAM enforcement).
func (s *Server) SetAuthorizer(a Authorizer) {
	s.mu.Lock()
	s.authz = a
	s.mu.Unlock()
}

// authorize asks the authorizer, if any, about c.
func (s *Server) authorize(ctx context.Context, c *Call, info ServiceInfo) *Error {
	s.mu.RLock()
	a := s.authz
	s.mu.RUnlock()
	if a == nil || c.ResourceARNs == nil || c.Principal.ARN == "" {
		return nil
	}
	return a.Authorize(ctx, c, info)
}

// Region is the default region.
func (s *Server) Region() string { return s.opts.Region }

// Account is the sandbox's own account id: the default account, where
// the admin identity and everything not deployed elsewhere live.
func (s *Server) Account() string { return s.opts.Account }

// Logger is the sandbox's own log.
func (s *Server) Logger() *slog.Logger { return s.log }

// URL is where the server listens, once Serve has started (for services that
// hand the endpoint to child processes).
func (s *Server) URL() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.baseURL
}

// SetURL records the endpoint when the caller runs the listener itself (httptest).
func (s *Server) SetURL(u string) {
	s.mu.Lock()
	s.baseURL = u
	s.mu.Unlock()
}

// MarkDirty asks for the state to be saved soon (after a write).
func (s *Server) MarkDirty() {
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

// Serve answers on l until ctx ends, then closes every service (stopping
// child processes) and saves the state.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	s.SetURL("http://" + l.Addr().String())
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	saveDone := make(chan struct{})
	saveCtx, stopSaving := context.WithCancel(context.Background())
	go func() { defer close(saveDone); s.saveLoop(saveCtx) }()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(shutdownCtx)
	stopSaving()
	<-saveDone
	if cerr := s.Close(); err == nil || errors.Is(err, http.ErrServerClosed) {
		err = cerr
	}
	return err
}

// Close stops every service that owns processes and saves the state.
func (s *Server) Close() error {
	s.mu.RLock()
	names := append([]string(nil), s.order...)
	s.mu.RUnlock()
	var errs []error
	for i := len(names) - 1; i >= 0; i-- {
		if c, ok := s.part(names[i]).(Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", names[i], err))
			}
		}
	}
	if err := s.SaveState(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *Server) saveLoop(ctx context.Context) {
	if s.opts.StateFile == "" {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.dirty:
			if err := s.SaveState(); err != nil {
				s.log.Error("save state", "err", err)
			}
			select { // at most two saves a second, however busy
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}

type stateFile struct {
	ClockOffset time.Duration              `json:"clockOffset"`
	Services    map[string]json.RawMessage `json:"services"`
}

// SaveState writes every service's state to the state file, atomically.
func (s *Server) SaveState() error {
	if s.opts.StateFile == "" {
		return nil
	}
	s.saving.Lock()
	defer s.saving.Unlock()
	st := stateFile{ClockOffset: s.clock.Offset(), Services: map[string]json.RawMessage{}}
	s.mu.RLock()
	parts := map[string]any{}
	for name, svc := range s.services {
		parts[name] = svc
	}
	for name, c := range s.extras {
		parts[name] = c
	}
	for name, svc := range parts {
		if sn, ok := svc.(Snapshotter); ok {
			raw, err := sn.Snapshot()
			if err != nil {
				s.mu.RUnlock()
				return fmt.Errorf("snapshot %s: %w", name, err)
			}
			st.Services[name] = raw
		}
	}
	s.mu.RUnlock()
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	tmp := s.opts.StateFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp, s.opts.StateFile); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// LoadState restores what SaveState wrote; a missing file is a fresh start.
// It reports whether there was state to load.
func (s *Server) LoadState() (bool, error) {
	if s.opts.StateFile == "" {
		return false, nil
	}
	b, err := os.ReadFile(s.opts.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read state: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return false, fmt.Errorf("decode state %s: %w", s.opts.StateFile, err)
	}
	s.clock.SetOffset(st.ClockOffset)
	// The parts restore without the server's lock held: a part that
	// restores a member account adds it (AddAccount).
	s.mu.RLock()
	parts := map[string]any{}
	for name := range st.Services {
		part := any(s.extras[name])
		if svc, ok := s.services[name]; ok {
			part = svc
		}
		parts[name] = part
	}
	s.mu.RUnlock()
	for name, raw := range st.Services {
		if sn, ok := parts[name].(Snapshotter); ok {
			if err := sn.Restore(raw); err != nil {
				return false, fmt.Errorf("restore %s: %w", name, err)
			}
		}
	}
	return true, nil
}

// ClockHeader is on every response of the server, AWS and admin: the
// sandbox clock's now (RFC 3339, UTC) when the response was written. The
// sandbox runs days ahead of real time during shortened waits, and a client
// drawing a wait's progress needs the time the workflow sees. The standard
// Date header stays real: SDKs take clock skew from it, and would then sign
// with a time the sandbox's SigV4 check refuses.
const ClockHeader = "X-Sandbox-Clock"

// clockStamp puts ClockHeader on a response as its header is written.
type clockStamp struct {
	http.ResponseWriter
	clock   *Clock
	stamped bool
}

func (w *clockStamp) stamp() {
	if !w.stamped {
		w.stamped = true
		w.Header().Set(ClockHeader, w.clock.Now().Format(time.RFC3339Nano))
	}
}

func (w *clockStamp) WriteHeader(status int) {
	w.stamp()
	w.ResponseWriter.WriteHeader(status)
}

func (w *clockStamp) Write(b []byte) (int, error) {
	w.stamp()
	return w.ResponseWriter.Write(b)
}

// Flush keeps streaming responses streaming through the wrapper.
func (w *clockStamp) Flush() {
	w.stamp()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *clockStamp) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP routes a request: the admin API, or an AWS call.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w := &clockStamp{ResponseWriter: rw, clock: s.clock}
	defer w.stamp() // a handler that wrote nothing: the header goes out after it returns
	byHost := s.hostService(r.Host)
	if byHost == nil && strings.HasPrefix(r.URL.Path, "/_sandbox/") {
		s.admin.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	requestID := NewUUID()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		writeError(w, ServiceInfo{Protocol: Query}, requestID, Errorf(413, "RequestEntityTooLarge", "request body too large or unreadable"))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))

	auth, authErr := sigv4.Parse(r)
	svc := byHost
	if svc == nil {
		svc = s.resolve(r, auth.Service)
	}
	if svc == nil {
		writeError(w, ServiceInfo{Protocol: Query}, requestID,
			Errorf(400, "UnknownService", "no sandbox service answers signing name %q", auth.Service))
		return
	}
	info := svc.Info()
	c := &Call{Service: info.Name, Region: auth.Region, RequestID: requestID, Time: s.clock.Now(), HTTP: r, Body: body}
	if info.Global {
		c.Region = "us-east-1"
	}
	c.byHost = byHost != nil
	if es, ok := svc.(ErrorShaper); ok {
		c.shaper = es
	}
	if e := s.route(svc, c); e != nil {
		s.finish(w, info, c, start, nil, e, nil, attribution{})
		return
	}
	if e := s.authenticate(r, body, auth, authErr, info, c); e != nil {
		s.finish(w, info, c, start, nil, e, nil, attribution{})
		return
	}
	svc = scoped(svc, c.Principal.Account)
	nameResources(svc, c)
	if e := s.rateLimit(c, info); e != nil {
		// Attributed as any call (the record names the state that was
		// throttled); record gives its ordinal back, as for a service's own throttle.
		s.finish(w, info, c, start, nil, e, nil, s.attribute(r.Context(), info.Name, c))
		return
	}
	if e := s.authorize(r.Context(), c, info); e != nil {
		s.finish(w, info, c, start, nil, e, nil, s.attribute(r.Context(), info.Name, c))
		return
	}
	s.invoke(r.Context(), w, svc, info, c, start)
}

// resolve finds the service a request is for: the signing name, or, for
// unsigned requests, what the target header or path says.
func (s *Server) resolve(r *http.Request, name string) Service {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if svc, ok := s.services[name]; ok {
		return svc
	}
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		prefix, _, _ := strings.Cut(t, ".")
		if svc, ok := s.services[s.targets[prefix]]; ok {
			return svc
		}
	}
	if strings.HasPrefix(r.URL.Path, "/2015-03-31/functions") || strings.HasPrefix(r.URL.Path, "/2021-10-31/functions") {
		return s.services["lambda"]
	}
	if name == "" {
		return s.services["sts"] // the common first call of any client
	}
	return nil
}

func (s *Server) route(svc Service, c *Call) *Error {
	info := svc.Info()
	switch info.Protocol {
	case Query:
		form := url.Values{}
		if len(c.Body) > 0 {
			f, err := url.ParseQuery(string(c.Body))
			if err != nil {
				return Errorf(400, "MalformedQueryString", "could not parse form body: %v", err)
			}
			form = f
		}
		for k, vs := range c.HTTP.URL.Query() {
			if !strings.HasPrefix(k, "X-Amz-") {
				form[k] = append(form[k], vs...)
			}
		}
		c.Params = form
		c.Action = form.Get("Action")
		if c.Action == "" {
			return Errorf(400, "MissingAction", "Missing Action")
		}
	case JSON10, JSON11:
		prefix, action, ok := strings.Cut(c.HTTP.Header.Get("X-Amz-Target"), ".")
		if !ok || prefix != info.TargetPrefix {
			return Errorf(400, "UnknownOperationException", "X-Amz-Target %q is not an operation of %s", c.HTTP.Header.Get("X-Amz-Target"), info.Name)
		}
		c.Action = action
	case RESTJSON:
		rt, ok := svc.(Router)
		if !ok {
			return errInternal("REST service without a router")
		}
		action, resource, found := rt.Route(c.HTTP)
		if !found {
			return Errorf(404, "UnknownOperationException", "no %s operation at %s %s", info.Name, c.HTTP.Method, c.HTTP.URL.Path)
		}
		c.Action, c.Resource = action, resource
	}
	return nil
}

func (s *Server) authenticate(r *http.Request, body []byte, auth sigv4.Auth, authErr error, info ServiceInfo, c *Call) *Error {
	switch {
	case errors.Is(authErr, sigv4.ErrMissing):
		return authError(info.Protocol, "missing", "")
	case authErr != nil:
		return authError(info.Protocol, "incomplete", authErr.Error())
	}
	c.AccessKeyID = auth.AccessKeyID
	if c.byHost && auth.Service != info.Name {
		// A host-routed endpoint checks the scope's service itself (a
		// function URL: "lambda"); elsewhere the signing name chose the service.
		return authError(info.Protocol, "incomplete", fmt.Sprintf("Credential should be scoped to correct service: '%s'.", info.Name))
	}
	if s.creds == nil {
		return errInternal("sandbox has no credential store (register IAM)")
	}
	cred, ok := s.creds.Credential(auth.AccessKeyID)
	if !ok || !cred.Active || cred.SessionToken != auth.SecurityToken {
		return authError(info.Protocol, "invalid-token", "")
	}
	if !cred.Expires.IsZero() && !c.Time.Before(cred.Expires) {
		// https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html
		if info.Protocol == Query {
			return &Error{Status: 403, Code: "ExpiredToken", Message: "The security token included in the request is expired", Sender: true}
		}
		return &Error{Status: 400, Code: "ExpiredTokenException", Message: "The security token included in the request is expired", Sender: true}
	}
	c.Principal = cred.Principal
	if err := sigv4.Verify(r, body, auth, cred.Secret, time.Now()); err != nil {
		if errors.Is(err, sigv4.ErrExpired) {
			return authError(info.Protocol, "expired", err.Error())
		}
		return authError(info.Protocol, "mismatch", "")
	}
	if c.Region == "" {
		c.Region = auth.Region
	}
	s.creds.MarkUsed(auth.AccessKeyID, info.IAMName(), c.Region, c.Time)
	return nil
}

// nameResources sets the resources IAM authorizes c on, for the services
// that name them.
func nameResources(svc Service, c *Call) {
	if n, ok := svc.(ResourceNamer); ok {
		c.ResourceARNs = n.ResourceARNs(c)
	}
}

// invoke runs an authenticated call through faults, the service and the observers.
func (s *Server) invoke(ctx context.Context, w http.ResponseWriter, svc Service, info ServiceInfo, c *Call, start time.Time) {
	at := s.attribute(ctx, info.Name, c)
	res, e, fault := s.run(ctx, svc, info, c, at)
	s.finish(w, info, c, start, res, e, fault, at)
}

// attribution is a call's origin and ordinal (CallRecord.Origin, .Ordinal).
type attribution struct {
	origin  *Origin
	ordinal int
}

// attribute finds who made c: the origin ctx carries (Step Functions calling
// for a state), else the invocation whose instance signs with c's key.
func (s *Server) attribute(ctx context.Context, service string, c *Call) attribution {
	var o *Origin
	if v, ok := OriginFrom(ctx); ok {
		o = &v
	} else if v, ok := s.origins.ofKey(c.AccessKeyID); ok && c.AccessKeyID != "" {
		o = &v
	}
	return attribution{origin: o, ordinal: s.calls.ordinal(o, service, c.Action)}
}

func (s *Server) run(ctx context.Context, svc Service, info ServiceInfo, c *Call, at attribution) (any, *Error, *Fault) {
	if at.origin != nil {
		ctx = WithOrigin(ctx, *at.origin) // Lambda binds the instance it runs the call on
	}
	fault := s.faults.match(info.Name, c.Action, c.Resource, at.origin, at.ordinal)
	var ferr *Error
	if fault != nil {
		if fault.Delay > 0 {
			select {
			case <-time.After(fault.Delay):
			case <-ctx.Done():
			}
		}
		ferr = fault.err(info.Protocol)
		if fault.Crash {
			c.Fault = fault
		}
		if ferr != nil && !fault.After {
			return nil, ferr, fault
		}
	}
	res, err := s.safeHandle(ctx, svc, c)
	var e *Error
	if err != nil && !errors.As(err, &e) {
		s.log.Error("service failed", "service", info.Name, "action", c.Action, "err", err)
		e = errInternal(err.Error())
	}
	if e == nil && !info.IsReadOnly(c.Action) {
		s.MarkDirty()
	}
	if ferr != nil { // After: the side effect happened, the caller hears a failure
		c.effect = &effect{res: res, err: e}
		return nil, ferr, fault
	}
	return res, e, fault
}

// safeHandle turns a service's panic into a 500, as AWS would answer, rather
// than a dropped connection.
func (s *Server) safeHandle(ctx context.Context, svc Service, c *Call) (res any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("service panic", "service", c.Service, "action", c.Action, "panic", fmt.Sprint(p))
			res, err = nil, errInternal("internal error")
		}
	}()
	return svc.Handle(ctx, c)
}

func (s *Server) finish(w http.ResponseWriter, info ServiceInfo, c *Call, start time.Time, res any, e *Error, fault *Fault, at attribution) {
	var status int
	if e != nil {
		status = e.Status
		if raw, ok := shape(c, e); ok {
			status = writeResult(w, info, c, raw)
		} else {
			writeError(w, info, c.RequestID, e)
		}
	} else {
		status = writeResult(w, info, c, res)
	}
	s.record(info, c, start, status, e, fault, res, at)
}

func (s *Server) record(info ServiceInfo, c *Call, start time.Time, status int, e *Error, fault *Fault, res any, at attribution) {
	rec := CallRecord{
		Time: c.Time, Service: info.Name, Action: c.Action, Resource: c.Resource, Region: c.Region,
		AccessKeyID: c.AccessKeyID, Principal: c.Principal.ARN, ResourceARNs: c.ResourceARNs, Status: status,
		Write:    !info.IsReadOnly(c.Action) && e == nil,
		Duration: float64(time.Since(start).Microseconds()) / 1000,
		Origin:   at.origin, Ordinal: at.ordinal, RateLimited: c.rateLimited,
	}
	if e != nil {
		rec.Error = e.Code
	}
	if fault != nil {
		rec.Fault = fault.ID
	} else if throttled(status, rec.Error) {
		s.calls.unthrottled(at.origin, info.Name, c.Action, at.ordinal)
	}
	s.calls.add(rec)
	if c.Principal.ARN == "" || c.rateLimited { // refused before authentication, or throttled: no event
		return
	}
	ev := Event{Call: c, Info: info, Status: status, Resources: c.eventResources, Params: c.requestParams, ResponseElements: c.responseElems, Response: res}
	if e != nil {
		ev.ErrorCode = e.Code
	}
	if c.effect != nil {
		// An answer dropped after the action ran (Fault.After): AWS
		// recorded the action as it happened; only the caller heard a
		// failure. CloudTrail's event is the action's own outcome.
		ev.Status, ev.ErrorCode, ev.Response = http.StatusOK, "", c.effect.res
		if c.effect.err != nil {
			ev.Status, ev.ErrorCode = c.effect.err.Status, c.effect.err.Code
		}
	}
	s.mu.RLock()
	obs := s.observers
	s.mu.RUnlock()
	for _, o := range obs {
		o.Observe(ev)
	}
}

// Internal runs a call that one service makes to another inside AWS (Step
// Functions invoking Lambda, publishing to SNS): no signature, but the same
// faults, call log and observers as a call from outside. body is what the
// protocol carries: a form for Query services, the payload for the others.
func (s *Server) Internal(ctx context.Context, service, action, resource string, p Principal, body []byte) (any, error) {
	svc, ok := s.Service(service)
	if !ok {
		return nil, fmt.Errorf("sandbox: no service %q", service)
	}
	svc = scoped(svc, p.Account)
	info := svc.Info()
	c := &Call{Service: info.Name, Action: action, Resource: resource, Region: s.opts.Region, Principal: p,
		RequestID: NewUUID(), Time: s.clock.Now(), Body: body,
		HTTP: (&http.Request{Method: http.MethodPost, URL: &url.URL{Path: "/"}, Header: http.Header{}}).WithContext(ctx)}
	if h := internalHeader(ctx); h != nil {
		c.HTTP.Header = h
	}
	if info.Protocol == Query { // body is the form, as from outside
		params, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("sandbox: internal %s %s: form body: %w", service, action, err)
		}
		c.Params = params
	}
	start := time.Now()
	nameResources(svc, c)
	at := s.attribute(ctx, info.Name, c)
	var res any
	var e *Error
	var fault *Fault
	if e = s.rateLimit(c, info); e == nil {
		if e = s.authorize(ctx, c, info); e == nil {
			res, e, fault = s.run(ctx, svc, info, c, at)
		}
	}
	status := http.StatusOK
	if e != nil {
		status = e.Status
	} else if raw, ok := res.(*Raw); ok && raw.Status != 0 {
		status = raw.Status
	}
	s.record(info, c, start, status, e, fault, res, at)
	if e != nil {
		return nil, e
	}
	return res, nil
}

// shape is the error as the call's service writes it, if it shapes its own.
func shape(c *Call, e *Error) (*Raw, bool) {
	if c.shaper == nil {
		return nil, false
	}
	return c.shaper.ShapeError(c, e)
}

func writeResult(w http.ResponseWriter, info ServiceInfo, c *Call, res any) int {
	w.Header().Set("X-Amzn-Requestid", c.RequestID)
	if raw, ok := res.(*Raw); ok {
		for k, vs := range raw.Header {
			w.Header()[k] = vs
		}
		status := raw.Status
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		_, _ = w.Write(raw.Body)
		return status
	}
	switch info.Protocol {
	case Query:
		var b bytes.Buffer
		b.WriteString(xml.Header)
		enc := xml.NewEncoder(&b)
		root := xml.StartElement{Name: xml.Name{Local: c.Action + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: info.XMLNamespace}}}
		_ = enc.EncodeToken(root)
		if res != nil {
			if err := enc.EncodeElement(res, xml.StartElement{Name: xml.Name{Local: c.Action + "Result"}}); err != nil {
				writeError(w, info, c.RequestID, errInternal("encode result: "+err.Error()))
				return 500
			}
		}
		_ = enc.EncodeElement(struct {
			RequestID string `xml:"RequestId"`
		}{c.RequestID}, xml.StartElement{Name: xml.Name{Local: "ResponseMetadata"}})
		_ = enc.EncodeToken(root.End())
		_ = enc.Flush()
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write(b.Bytes())
	default:
		if res == nil {
			res = struct{}{}
		}
		b, err := json.Marshal(res)
		if err != nil {
			writeError(w, info, c.RequestID, errInternal("encode result: "+err.Error()))
			return 500
		}
		w.Header().Set("Content-Type", info.contentType())
		_, _ = w.Write(b)
	}
	return http.StatusOK
}

// Services lists the registered signing names, sorted.
func (s *Server) Services() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := append([]string(nil), s.order...)
	sort.Strings(names)
	return names
}
