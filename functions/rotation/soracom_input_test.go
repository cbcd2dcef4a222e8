package rotation_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema"
)

func TestSoracomTargetInput(t *testing.T) {
	t.Parallel()
	const base = `{"user":"u","targets":[{"type":"soracom","name":"funnel","connection":"keyrotator/connections/soracom"`
	tests := []struct {
		name      string
		raw       string
		field     string // "" = accepted
		says      string
		wantStrat string
	}{
		{"prefix, default strategy", base + `,"credentialPrefix":"aws-funnel"}]}`, "", "", "newCredential"},
		{"ids, in place", base + `,"credentialIds":["aws-funnel"],"strategy":"inPlace"}]}`, "", "", "inPlace"},
		{"neither prefix nor ids", base + `}]}`, "targets[0].credentialPrefix", "is required", ""},
		{"the old name of inPlace", base + `,"credentialPrefix":"p","strategy":"updateInPlace"}]}`, "targets[0].strategy", "newCredential", ""},
		{"a prefix with a slash", base + `,"credentialPrefix":"a/b"}]}`, "targets[0].credentialPrefix", "", ""},
		{"an id twice", base + `,"credentialIds":["a","a"]}]}`, "targets[0].credentialIds", "", ""},
		{"an unknown field", base + `,"credentialPrefix":"p","groups":["g"]}]}`, "targets[0].groups", "not a known field", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := inputschema.Parse([]byte(tt.raw))
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := in.Targets[0].Strategy; got != tt.wantStrat {
					t.Errorf("strategy %q, want %q", got, tt.wantStrat)
				}
				return
			}
			var ii *rotation.InvalidInput
			if !errors.As(err, &ii) || ii.Field != tt.field || !strings.Contains(ii.Reason, tt.says) {
				t.Fatalf("err = %#v, want field %s saying %q", err, tt.field, tt.says)
			}
		})
	}
}
