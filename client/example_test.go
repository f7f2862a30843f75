package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"testing"

	"github.com/keyq/keyq/client"
	"github.com/keyq/keyq/internal/testutil"
)

// exampleAddr is the address of the server the examples talk to. A real program
// would use the address of its keyq server, such as "127.0.0.1:7470".
var exampleAddr string

// TestMain starts one in-process server for the examples, which have no *testing.T
// of their own, and stops it after every test and example has run.
func TestMain(m *testing.M) {
	tb := &mainTB{}
	exampleAddr = testutil.StartServer(tb).Addr
	code := m.Run()
	tb.cleanup()
	if tb.failed {
		code = 1
	}
	os.Exit(code)
}

// Put files' bytes into a queue and take them back out, in order, until it is empty.
func Example() {
	ctx := context.Background()
	c, err := client.Dial(ctx, exampleAddr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for _, name := range []string{"scan-001.png", "scan-002.png", "scan-003.png"} {
		if _, err := c.Put(ctx, "images", []byte("bytes of "+name)); err != nil {
			log.Fatal(err)
		}
	}
	n, err := c.Len(ctx, "images")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("waiting:", n)

	for {
		msg, err := c.Get(ctx, "images")
		if errors.Is(err, client.ErrEmpty) {
			fmt.Println("images is empty")
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("got %q\n", msg.Data)
	}
	// Output:
	// waiting: 3
	// got "bytes of scan-001.png"
	// got "bytes of scan-002.png"
	// got "bytes of scan-003.png"
	// images is empty
}

// A refusal comes back as an *Error with a status code to branch on.
func ExampleError() {
	ctx := context.Background()
	c, err := client.Dial(ctx, exampleAddr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	_, err = c.Put(ctx, "tax\nreturns", []byte("%PDF-1.7"))
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println("code:", e.Code)
		fmt.Println("connection dead:", e.Fatal)
		fmt.Println(e.Text)
	}
	// Output:
	// code: InvalidKey
	// connection dead: false
	// invalid key: contains control character 0x0a at byte 3
}

// mainTB is the testing.TB that TestMain lends to testutil.StartServer: it keeps the
// cleanups to run when the package's tests are done, and reports failures on stderr.
// The methods StartServer does not call are left to the embedded nil interface.
type mainTB struct {
	testing.TB
	cleanups []func()
	failed   bool
}

func (tb *mainTB) Helper()           {}
func (tb *mainTB) Output() io.Writer { return io.Discard }
func (tb *mainTB) Cleanup(f func())  { tb.cleanups = append(tb.cleanups, f) }
func (tb *mainTB) Errorf(f string, args ...any) {
	fmt.Fprintf(os.Stderr, "example server: "+f+"\n", args...)
	tb.failed = true
}
func (tb *mainTB) Fatalf(f string, args ...any) {
	fmt.Fprintf(os.Stderr, "example server: "+f+"\n", args...)
	os.Exit(1)
}

func (tb *mainTB) cleanup() {
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
}
