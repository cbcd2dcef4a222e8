package lambda

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"sort"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// functionConfiguration is Lambda's FunctionConfiguration document.
type functionConfiguration struct {
	FunctionName     string            `json:"FunctionName"`
	FunctionArn      string            `json:"FunctionArn"`
	Runtime          string            `json:"Runtime"`
	Role             string            `json:"Role"`
	Handler          string            `json:"Handler"`
	CodeSize         int64             `json:"CodeSize"`
	Description      string            `json:"Description"`
	Timeout          int               `json:"Timeout"`
	MemorySize       int               `json:"MemorySize"`
	LastModified     string            `json:"LastModified"`
	CodeSha256       string            `json:"CodeSha256"`
	Version          string            `json:"Version"`
	Environment      *environment      `json:"Environment,omitempty"`
	TracingConfig    map[string]string `json:"TracingConfig"`
	State            string            `json:"State"`
	LastUpdateStatus string            `json:"LastUpdateStatus"`
	PackageType      string            `json:"PackageType"`
	Architectures    []string          `json:"Architectures"`
	EphemeralStorage map[string]int    `json:"EphemeralStorage"`
	LoggingConfig    map[string]string `json:"LoggingConfig"`
}

type environment struct {
	Variables map[string]string `json:"Variables"`
}

func (s *Service) configuration(region string, fn *function) functionConfiguration {
	size, sum := codeInfo(fn.cfg.Path)
	arch := "x86_64"
	if runtime.GOARCH == "arm64" {
		arch = "arm64"
	}
	fc := functionConfiguration{
		FunctionName: fn.cfg.Name, FunctionArn: s.functionARN(region, fn.cfg.Name), Runtime: "provided.al2023",
		Role: s.roleARN(fn.cfg), Handler: fn.cfg.Handler, CodeSize: size, Timeout: int(math.Ceil(fn.cfg.Timeout.Seconds())),
		MemorySize: fn.cfg.MemoryMB, LastModified: fn.modified.UTC().Format("2006-01-02T15:04:05.000-0700"),
		CodeSha256: sum, Version: "$LATEST", TracingConfig: map[string]string{"Mode": "PassThrough"},
		State: "Active", LastUpdateStatus: "Successful", PackageType: "Zip", Architectures: []string{arch},
		EphemeralStorage: map[string]int{"Size": 512},
		LoggingConfig:    map[string]string{"LogFormat": "JSON", "LogGroup": fn.cfg.LogGroup, "ApplicationLogLevel": "INFO", "SystemLogLevel": "INFO"},
	}
	if len(fn.cfg.Env) > 0 {
		fc.Environment = &environment{Variables: cloneEnv(fn.cfg.Env)}
	}
	return fc
}

// codeInfo is the size and base64 SHA-256 of a bootstrap, as Lambda shows a package's.
func codeInfo(path string) (int64, string) {
	f, err := os.Open(path)
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	h := sha256.New()
	n, _ := io.Copy(h, f)
	return n, base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func jsonRaw(v any) (*sandbox.Raw, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &sandbox.Raw{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Body: b}, nil
}

func (s *Service) getFunction(c *sandbox.Call) (any, error) {
	fn, err := s.resolve(c.Region, c.Resource, c.HTTP.URL.Query().Get("Qualifier"))
	if err != nil {
		return nil, err
	}
	c.Touch("AWS::Lambda::Function", s.functionARN(c.Region, fn.cfg.Name))
	fc := s.configuration(c.Region, fn)
	if c.Action == "GetFunctionConfiguration" {
		return jsonRaw(fc)
	}
	return jsonRaw(map[string]any{
		"Configuration": fc,
		"Code":          map[string]string{"RepositoryType": "S3", "Location": "file://" + fn.cfg.Path},
	})
}

func (s *Service) listFunctions(c *sandbox.Call) (any, error) {
	s.mu.RLock()
	fns := make([]*function, 0, len(s.fns))
	for _, fn := range s.fns {
		fns = append(fns, fn)
	}
	s.mu.RUnlock()
	sort.Slice(fns, func(i, j int) bool { return fns[i].cfg.Name < fns[j].cfg.Name })
	out := make([]functionConfiguration, 0, len(fns))
	for _, fn := range fns {
		out = append(out, s.configuration(c.Region, fn))
	}
	return jsonRaw(map[string]any{"Functions": out})
}
