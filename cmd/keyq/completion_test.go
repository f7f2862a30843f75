package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/keyq/keyq/internal/testutil"
)

// asKeyqEnv makes the test binary run keyq's main instead of the tests, so that a
// shell's completion script can call it as the keyq command.
const asKeyqEnv = "KEYQ_TEST_RUN_AS_KEYQ"

func TestMain(m *testing.M) {
	if os.Getenv(asKeyqEnv) == "1" {
		main()
	}
	// A serve started by any test binds free ports for the doors it does not name,
	// never the fixed defaults that another server on this machine may hold.
	os.Setenv("KEYQ_RESP_ADDR", "127.0.0.1:0")
	os.Setenv("KEYQ_HTTP_ADDR", "127.0.0.1:0")
	os.Exit(m.Run())
}

// bashCompletionLib is Debian's bash-completion, which cobra's bash script needs.
const bashCompletionLib = "/usr/share/bash-completion/bash_completion"

// TestCompletionBashCompletesCommandsAndQueues sources `keyq completion bash` in
// bash and asks it, as Tab would, to complete a command and a queue name.
func TestCompletionBashCompletesCommandsAndQueues(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	if _, err := os.Stat(bashCompletionLib); err != nil {
		t.Skip("no bash-completion package")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	srv := testutil.StartServer(t)
	runCLI(t, "x", "put", "invoices", "--addr", srv.Addr).want(t, exitOK)

	script := runCLI(t, "", "completion", "bash").want(t, exitOK).stdout
	scriptPath := writeConfig(t, "keyq.bash", script)
	cmd := exec.Command(bash, "--norc", "-c", `
source `+bashCompletionLib+`
source "$1"
complete_line() {
	COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
	COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
	__start_keyq "$1" "${@: -1}" "${@: -2:1}" 2>/dev/null
	echo "${COMPREPLY[*]}"
}
complete_line "$2" sta
complete_line "$2" serve --fsync-i
complete_line "$2" get inv
`, "bash", scriptPath, self)
	cmd.Env = append(os.Environ(), asKeyqEnv+"=1", addrEnv+"="+srv.Addr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}

	want := "stats\n--fsync-interval\ninvoices\n"
	if string(out) != want {
		t.Fatalf("completions:\n%s\nwant:\n%s", out, strings.TrimSpace(want))
	}
}
