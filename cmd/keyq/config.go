package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// envPrefix starts the name of the environment variable of each serve flag:
// KEYQ_ and the flag's name in upper case, dashes turned to underscores.
const envPrefix = "KEYQ_"

// configFlag names the flag of serve that points at its config file.
const configFlag = "config"

// configHelp ends serve's long help: where else its flags may be set.
const configHelp = `

Every flag may also be set in a config file and in the environment:
  - the file (--config FILE, or $KEYQ_CONFIG) is TOML, or YAML when its name ends in
    .yaml or .yml, with the flag names as keys:
        addr = "127.0.0.1:7470"
        fsync = "always"
        max-conns = 5000
        shutdown-timeout = "30s"
    A key that is no flag of serve is an error.
  - each variable is KEYQ_ and the flag's name in upper case with underscores, as the
    flags below show: KEYQ_ADDR, KEYQ_DATA_DIR, KEYQ_FSYNC. An empty one is ignored.
    KEYQ_ADDR is also where the client commands look for the server.
A flag given on the command line wins over the environment, which wins over the file,
which wins over the default.`

// envName returns the environment variable that sets the flag called name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// withConfig gives cmd a --config flag, and makes it fill every flag that its
// command line left unset from the environment, else from the config file, before
// its own PreRunE checks them. Call it once every flag of cmd is registered.
func withConfig(cmd *cobra.Command) {
	var path string
	fs := cmd.Flags()
	fs.VisitAll(func(f *pflag.Flag) {
		f.Usage += " [$" + envName(f.Name) + "]"
	})
	fs.StringVar(&path, configFlag, "",
		"config file setting any of these flags, TOML or YAML [$"+envName(configFlag)+"]")
	cmd.Long += configHelp

	pre := cmd.PreRunE
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		if err := applyConfig(cmd.Flags(), path, lookupEnv); err != nil {
			return err
		}
		if pre != nil {
			return pre(cmd, args)
		}
		return nil
	}
}

// lookupEnv reads the environment, counting an empty variable as unset, as the
// client commands do with KEYQ_ADDR.
func lookupEnv(name string) (string, bool) {
	v := os.Getenv(name)
	return v, v != ""
}

// applyConfig sets each flag of fs that the command line left unset: from its
// environment variable if env has it, else from the config file at path (or at
// $KEYQ_CONFIG when path is empty), if any.
func applyConfig(fs *pflag.FlagSet, path string, env func(string) (string, bool)) error {
	if !fs.Changed(configFlag) {
		if p, ok := env(envName(configFlag)); ok {
			path = p
		}
	}
	var file map[string]string
	if path != "" {
		var err error
		if file, err = readConfig(path, fs); err != nil {
			return err
		}
	}

	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == configFlag || f.Name == "help" {
			return
		}
		if v, ok := env(envName(f.Name)); ok {
			err = setFlag(fs, f.Name, v, "$"+envName(f.Name))
		} else if v, ok := file[f.Name]; ok {
			err = setFlag(fs, f.Name, v, "config "+path+": "+f.Name)
		}
	})
	return err
}

// setFlag sets the flag name to v, naming where v came from in its error.
func setFlag(fs *pflag.FlagSet, name, v, from string) error {
	if err := fs.Set(name, v); err != nil {
		if cause := errors.Unwrap(err); cause != nil {
			err = cause // pflag's wrapping speaks of the command line
		}
		return fmt.Errorf("%s = %q: %w", from, v, err)
	}
	return nil
}

// readConfig parses the config file at path into flag values as the command line
// would spell them. Every key must name a flag of fs.
func readConfig(path string, fs *pflag.FlagSet) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}

	raw := map[string]any{}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		err = yaml.Unmarshal(data, &raw)
	default:
		_, err = toml.Decode(string(data), &raw)
	}
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}

	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the first bad key the same way every time

	values := make(map[string]string, len(raw))
	for _, k := range keys {
		if f := fs.Lookup(k); f == nil || k == configFlag || k == "help" {
			return nil, fmt.Errorf("config %s: unknown key %q: not a flag of keyq serve",
				path, k)
		}
		if _, list := raw[k].([]any); list && !takesList(fs.Lookup(k)) {
			return nil, fmt.Errorf("config %s: %s: a list, where one value was expected",
				path, k)
		}
		v, err := configValue(raw[k])
		if err != nil {
			return nil, fmt.Errorf("config %s: %s: %w", path, k, err)
		}
		values[k] = v
	}
	return values, nil
}

// takesList reports whether f takes a list of values (pflag's slice and array
// types), which a config file may give as an array.
func takesList(f *pflag.Flag) bool {
	t := f.Value.Type()
	return strings.HasSuffix(t, "Slice") || strings.HasSuffix(t, "Array")
}

// configValue spells a decoded value as its flag's argument would be written.
func configValue(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			s, err := configValue(e)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	case nil:
		return "", nil
	case map[string]any:
		return "", errors.New("a table, where a value was expected")
	}
	return "", fmt.Errorf("a value of type %T, which no flag takes", v)
}
