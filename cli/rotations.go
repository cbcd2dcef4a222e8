package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// The rotations config files status reads for schedules, in the order it
// looks for them (the Makefile's CONFIG does the same).
var defaultConfigs = []string{"keyrotator.config.json", "keyrotator.config.example.json"}

// rotationsFile is the part of the deployment config (infra/config) status
// needs: each rotation's schedule and whose key it rotates. The CLI does not
// import infra (the CDK), so it reads the JSON itself.
type rotationsFile struct {
	Rotations []scheduledRotation `json:"rotations"`
	// Fleet is the sweep's (issue 15): its schedule and the templates
	// whose tagged users it rotates.
	Fleet *struct {
		Schedule  string `json:"schedule"`
		TimeZone  string `json:"timeZone"`
		Templates []struct {
			Name     string   `json:"name"`
			UserPath string   `json:"userPath"`
			Accounts []string `json:"accounts"`
		} `json:"templates"`
	} `json:"fleet"`
}

type scheduledRotation struct {
	Name     string `json:"name"`
	Schedule string `json:"schedule"`
	TimeZone string `json:"timeZone"`
	Enabled  *bool  `json:"enabled"`
	Input    struct {
		User string `json:"user"`
		// Account is the user's account (12 digits); "" is the stack's own.
		Account string            `json:"account"`
		Targets []json.RawMessage `json:"targets"`
	} `json:"input"`
}

// key is the rotation's user across accounts (rotation.UserKey): what its
// record is named after, and what status lists users by.
func (r scheduledRotation) key() string { return rotation.UserKey(r.Input.Account, r.Input.User) }

func (r scheduledRotation) enabled() bool { return r.Enabled == nil || *r.Enabled }

// loadRotations reads path, or the first default file there is; path ""
// and no default file is no schedules, not an error.
func loadRotations(path string) (rotationsFile, string, error) {
	explicit := path != ""
	candidates := []string{path}
	if !explicit {
		candidates = defaultConfigs
	}
	for _, p := range candidates {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) && !explicit {
			continue
		}
		if err != nil {
			return rotationsFile{}, "", usageErr("--config", "%v", err)
		}
		var f rotationsFile
		if err := json.Unmarshal(b, &f); err != nil {
			return rotationsFile{}, "", usageErr("--config", "%s: not a rotations config: %s", p, rotation.PlainJSONError(err))
		}
		return f, p, nil
	}
	return rotationsFile{}, "", nil
}

// forUser is the rotations of one IAM user, by its key (rotation.UserKey:
// <user>, or <account>/<user> for a member account's).
func (f rotationsFile) forUser(key string) []scheduledRotation {
	var out []scheduledRotation
	for _, r := range f.Rotations {
		if r.key() == key {
			out = append(out, r)
		}
	}
	return out
}

func (r scheduledRotation) String() string {
	return fmt.Sprintf("%s: %s %s", r.Name, r.Schedule, r.TimeZone)
}
