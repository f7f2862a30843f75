package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/keyq/keyq/client"
)

// Send a round of puts and gets in one write, then read each result in the order
// the requests were queued.
func ExampleClient_Pipeline() {
	ctx := context.Background()
	c, err := client.Dial(ctx, exampleAddr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	p := c.Pipeline()
	var puts []*client.Result[uint64]
	for _, page := range []string{"page 1", "page 2", "page 3"} {
		puts = append(puts, p.Put("pages", []byte(page)))
	}
	if err := p.Exec(ctx); err != nil {
		log.Fatal(err) // the connection died or ctx ended
	}
	for _, put := range puts {
		if err := put.Err(); err != nil {
			log.Fatal(err)
		}
	}

	p.Reset() // reuse the memory of the round above; its results are gone
	var gets []*client.Result[client.Message]
	for range 4 {
		gets = append(gets, p.Get("pages"))
	}
	refused := p.Put("bad\nname", []byte("x"))
	if err := p.Exec(ctx); err != nil {
		log.Fatal(err)
	}
	for _, get := range gets {
		msg, err := get.Result()
		if errors.Is(err, client.ErrEmpty) {
			fmt.Println("pages is empty")
			continue
		}
		fmt.Printf("got %q\n", msg.Data)
	}
	fmt.Println("bad name:", refused.Err() != nil)
	// Output:
	// got "page 1"
	// got "page 2"
	// got "page 3"
	// pages is empty
	// bad name: true
}
