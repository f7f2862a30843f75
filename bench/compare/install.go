package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
)

// ensureInstalled installs the Debian packages of the servers whose binary is
// missing and returns, by server name, why a server cannot run (not packaged, or
// the install failed). Servers without a package (keyq) are left alone.
func ensureInstalled(list []*server, install bool, log *slog.Logger) map[string]string {
	missing := map[string]string{}
	var pkgs []string
	for _, s := range list {
		if s.pkg == "" || onPath(s.binary) {
			continue
		}
		if !install {
			missing[s.name] = fmt.Sprintf("%s is not installed (run without -no-install)", s.binary)
			continue
		}
		if !packaged(s.pkg) {
			missing[s.name] = fmt.Sprintf("Debian package %s is not available here", s.pkg)
			continue
		}
		pkgs = append(pkgs, s.pkg)
	}
	if len(pkgs) > 0 {
		log.Info("installing anchors", "packages", strings.Join(pkgs, " "))
		if err := aptInstall(pkgs); err != nil {
			log.Error("apt-get install failed", "err", err)
		}
	}
	for _, s := range list {
		if s.pkg != "" && !onPath(s.binary) && missing[s.name] == "" {
			missing[s.name] = fmt.Sprintf("%s did not install (see apt-get output)", s.pkg)
		}
	}
	return missing
}

func onPath(binary string) bool {
	_, err := exec.LookPath(binary)
	return err == nil
}

// packaged reports whether apt knows a candidate version of pkg, updating the
// package lists once if it knows none.
func packaged(pkg string) bool {
	if candidate(pkg) {
		return true
	}
	if err := run("apt-get", "update"); err != nil {
		return false
	}
	return candidate(pkg)
}

func candidate(pkg string) bool {
	out, err := exec.Command("apt-cache", "policy", pkg).Output()
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate:"); ok {
			return strings.TrimSpace(v) != "(none)"
		}
	}
	return false
}

// aptInstall installs pkgs without starting their services: the comparison starts
// its own instances on private ports.
func aptInstall(pkgs []string) error {
	args := append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)
	cmd := exec.Command("apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "RUNLEVEL=1")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("apt-get install %s: %w", strings.Join(pkgs, " "), err)
	}
	return nil
}

func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}
