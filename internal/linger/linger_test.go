package linger

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// TestCloseLetsASendingClientReadTheLastReplies: the server writes its last replies
// and closes while the client, slow to read them, still sends fast. The client must
// read every reply and then EOF, not a reset that destroys the unread ones.
func TestCloseLetsASendingClientReadTheLastReplies(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	replies := bytes.Repeat([]byte("reply\n"), 50_000) // 300 KB: more than fits in flight

	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		nc.Write(replies)
		Close(nc)
	}()

	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() { // a client that pipelines without looking at the replies
		chunk := make([]byte, 64<<10)
		for sent := 0; sent < 1<<30; sent += len(chunk) {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := nc.Write(chunk); err != nil {
				return
			}
		}
	}()

	time.Sleep(100 * time.Millisecond) // reads late: the server has long closed its side
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(nc)
	if err != nil {
		t.Fatalf("read %d of %d reply bytes, then %v", len(got), len(replies), err)
	}
	if !bytes.Equal(got, replies) {
		t.Fatalf("read %d reply bytes, want %d", len(got), len(replies))
	}
}
