package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// serveFlags returns the flags of a new serve command after parsing args.
func serveFlags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := newServeCmd(nil).Flags()
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return fs
}

// writeConfig writes a config file named name in a temporary directory.
func writeConfig(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// envMap is an environment for applyConfig.
type envMap map[string]string

func (e envMap) lookup(name string) (string, bool) {
	v, ok := e[name]
	return v, ok
}

func flagValue(t *testing.T, fs *pflag.FlagSet, name string) string {
	t.Helper()
	f := fs.Lookup(name)
	if f == nil {
		t.Fatalf("no flag --%s", name)
	}
	return f.Value.String()
}

func TestConfigPrecedenceFlagEnvFileDefault(t *testing.T) {
	path := writeConfig(t, "keyq.toml", `
max-conns = 1
idle-timeout = "5s"
log-level = "warn"
`)
	fs := serveFlags(t, "--max-conns", "3", "--config", path)
	env := envMap{"KEYQ_MAX_CONNS": "2", "KEYQ_IDLE_TIMEOUT": "7s"}
	if err := applyConfig(fs, path, env.lookup); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct{ flag, want, why string }{
		{"max-conns", "3", "the command line beats the environment and the file"},
		{"idle-timeout", "7s", "the environment beats the file"},
		{"log-level", "warn", "the file beats the default"},
		{"shutdown-timeout", "10s", "the default stays when nothing sets it"},
	} {
		if got := flagValue(t, fs, c.flag); got != c.want {
			t.Errorf("--%s = %s, want %s: %s", c.flag, got, c.want, c.why)
		}
	}
}

func TestConfigPathFromEnvironment(t *testing.T) {
	path := writeConfig(t, "keyq.yaml", "max-conns: 42\nstorage: memory\n")
	fs := serveFlags(t)
	if err := applyConfig(fs, "", envMap{"KEYQ_CONFIG": path}.lookup); err != nil {
		t.Fatal(err)
	}
	if got := flagValue(t, fs, "max-conns"); got != "42" {
		t.Fatalf("--max-conns = %s, want 42 from $KEYQ_CONFIG's YAML file", got)
	}
}

func TestConfigEmptyEnvironmentVariableIsUnset(t *testing.T) {
	t.Setenv("KEYQ_HTTP_ADDR", "")
	fs := serveFlags(t)
	if err := applyConfig(fs, "", lookupEnv); err != nil {
		t.Fatal(err)
	}
	if fs.Changed("http-addr") {
		t.Fatalf("an empty $KEYQ_HTTP_ADDR set --http-addr to %q", flagValue(t, fs, "http-addr"))
	}
}

func TestConfigUnknownKeyIsNamed(t *testing.T) {
	for name, text := range map[string]string{
		"keyq.toml": "addr = \"127.0.0.1:0\"\nadress = \"127.0.0.1:1\"\n",
		"keyq.yml":  "addr: 127.0.0.1:0\nadress: 127.0.0.1:1\n",
	} {
		path := writeConfig(t, name, text)
		err := applyConfig(serveFlags(t), path, envMap{}.lookup)
		if err == nil || !strings.Contains(err.Error(), `unknown key "adress"`) {
			t.Errorf("%s: error %v, want one naming the unknown key adress", name, err)
		}
	}

	// Through the command: a usage error that names the key.
	path := writeConfig(t, "keyq.toml", "[serve]\naddr = \"127.0.0.1:0\"\n")
	r := runCLI(t, "", "serve", "--config", path).want(t, exitUsage)
	if !strings.Contains(r.stderr, `unknown key "serve"`) {
		t.Fatalf("stderr %q does not name the key", r.stderr)
	}
}

func TestConfigBadValueIsNamed(t *testing.T) {
	for _, c := range []struct {
		name, text string
		env        envMap
		want       string
	}{
		{"keyq.toml", `fsync = "sometimes"`, nil, `fsync = "sometimes": unknown fsync policy`},
		{"keyq.toml", `max-conns = "many"`, nil, `max-conns = "many"`},
		{"keyq.toml", `max-conns = 1.5`, nil, `max-conns = "1.5"`},
		{"keyq.toml", "[addr]\nport = 1\n", nil, "addr: a table"},
		{"keyq.toml", `addr = ["127.0.0.1:1", "127.0.0.1:2"]`, nil, "addr: a list"},
		{"keyq.yaml", "max-conns:\n  - 1\n  - 2\n", nil, "max-conns: a list"},
		{"keyq.toml", `addr = `, nil, "config"},
		{"keyq.yaml", "segment-bytes: lots\n", nil, `segment-bytes = "lots"`},
		{"keyq.toml", "", envMap{"KEYQ_LOG_LEVEL": "loud"}, `$KEYQ_LOG_LEVEL = "loud"`},
	} {
		path := writeConfig(t, c.name, c.text)
		err := applyConfig(serveFlags(t), path, c.env.lookup)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %q %v: error %v, want one with %q", c.name, c.text, c.env, err, c.want)
		}
	}
}

// flagSamples holds, for each type of serve flag, a value unlike every default, as
// a TOML value. A flag of a new type fails TestConfigReachesEveryFlag until it has
// a sample here.
var flagSamples = map[string]string{
	"string":                `"127.0.0.1:1"`,
	"int":                   `7`,
	"duration":              `"17s"`,
	"bool":                  `true`,
	"bytes":                 `"8MiB"`,
	"text|json":             `"json"`,
	"level":                 `"debug"`,
	"disk|memory":           `"memory"`,
	"always|interval|never": `"never"`,
}

func TestConfigReachesEveryFlag(t *testing.T) {
	var toml, yaml strings.Builder
	env := envMap{}
	want := map[string]string{}
	serveFlags(t).VisitAll(func(f *pflag.Flag) {
		if f.Name == configFlag {
			return
		}
		sample, ok := flagSamples[f.Value.Type()]
		if !ok {
			t.Fatalf("--%s has type %s with no sample in flagSamples", f.Name, f.Value.Type())
		}
		fmt.Fprintf(&toml, "%s = %s\n", f.Name, sample)
		fmt.Fprintf(&yaml, "%s: %s\n", f.Name, sample)
		env[envName(f.Name)] = strings.Trim(sample, `"`)

		// What the flag reads after the same value on the command line.
		ref := serveFlags(t, "--"+f.Name+"="+strings.Trim(sample, `"`))
		want[f.Name] = flagValue(t, ref, f.Name)
		if want[f.Name] == f.DefValue {
			t.Fatalf("sample %s of --%s is its default: pick another", sample, f.Name)
		}
	})

	for _, c := range []struct {
		from string
		path string
		env  envMap
	}{
		{"toml", writeConfig(t, "keyq.toml", toml.String()), envMap{}},
		{"yaml", writeConfig(t, "keyq.yaml", yaml.String()), envMap{}},
		{"env", "", env},
	} {
		fs := serveFlags(t)
		if err := applyConfig(fs, c.path, c.env.lookup); err != nil {
			t.Fatalf("%s: %v", c.from, err)
		}
		for name, w := range want {
			if got := flagValue(t, fs, name); got != w {
				t.Errorf("%s: --%s = %s, want %s", c.from, name, got, w)
			}
		}
	}
}

func TestServeReadsConfigFileAndEnvironment(t *testing.T) {
	useMemoryStorage(t)
	path := writeConfig(t, "keyq.toml", `
addr = "127.0.0.1:0"
max-message-bytes = 1000
log-format = "json"
`)
	_, log, _ := startServe(t, "--config", path)
	if !strings.Contains(log.String(), `"max_message_bytes":1000`) {
		t.Fatalf("start line does not follow the config file:\n%s", log)
	}

	t.Setenv("KEYQ_MAX_MESSAGE_BYTES", "2000")
	_, log, _ = startServe(t, "--config", path)
	if !strings.Contains(log.String(), `"max_message_bytes":2000`) {
		t.Fatalf("start line does not follow $KEYQ_MAX_MESSAGE_BYTES:\n%s", log)
	}
}

func TestServeHelpMentionsConfigAndEnvironment(t *testing.T) {
	r := runCLI(t, "", "serve", "--help").want(t, exitOK)
	for _, want := range []string{"--config", "KEYQ_CONFIG", "config file", "KEYQ_DATA_DIR"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("serve --help lacks %q", want)
		}
	}
	newServeCmd(nil).Flags().VisitAll(func(f *pflag.Flag) {
		if !strings.Contains(r.stdout, "--"+f.Name+" ") {
			t.Errorf("serve --help lacks --%s", f.Name)
		}
		if !strings.Contains(r.stdout, "$"+envName(f.Name)) {
			t.Errorf("serve --help lacks $%s", envName(f.Name))
		}
	})
}
