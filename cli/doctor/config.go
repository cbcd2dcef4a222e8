package doctor

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Config is the part of the deployment config (infra/config) doctor
// checks against: the stack prefix and each rotation. The CLI does not
// import infra (the CDK), so it reads the JSON itself; infra's synth has
// already refused a config that does not validate.
type Config struct {
	Prefix    string     `json:"prefix"`
	Rotations []Rotation `json:"rotations"`
}

// Rotation is one configured rotation.
type Rotation struct {
	Name     string         `json:"name"`
	Schedule string         `json:"schedule"`
	TimeZone string         `json:"timeZone"`
	Enabled  *bool          `json:"enabled"`
	Input    rotation.Input `json:"input"`
}

// IsEnabled is the config's enabled, true by default.
func (r Rotation) IsEnabled() bool { return r.Enabled == nil || *r.Enabled }

// LoadConfig reads a deployment config file.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("%s: not a keyrotator config: %s", path, rotation.PlainJSONError(err))
	}
	if len(c.Rotations) == 0 {
		return Config{}, fmt.Errorf("%s: no rotations", path)
	}
	return c, nil
}
