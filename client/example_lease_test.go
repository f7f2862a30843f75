package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/keyq/keyq/client"
)

// A worker takes jobs under a lease and acks each one it finished; the one it could
// not do goes back with Nack and comes again, with a higher delivery count.
func ExampleClient_Reserve() {
	ctx := context.Background()
	c, err := client.Dial(ctx, exampleAddr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	jobs := [][]byte{[]byte("resize photo-1"), []byte("resize photo-2")}
	if _, err := c.PutBatch(ctx, "jobs", jobs); err != nil {
		log.Fatal(err)
	}

	failedOnce := false
	for {
		ds, err := c.Reserve(ctx, []string{"jobs"},
			client.ReserveOptions{Lease: 30 * time.Second, Wait: 100 * time.Millisecond})
		if errors.Is(err, client.ErrEmpty) {
			fmt.Println("no more jobs")
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		d := ds[0]
		if string(d.Data) == "resize photo-2" && !failedOnce {
			failedOnce = true
			fmt.Printf("failed %q (delivery %d), giving it back\n", d.Data, d.Count)
			if err := c.Nack(ctx, d.DeliveryID, 0); err != nil {
				log.Fatal(err)
			}
			continue
		}
		fmt.Printf("done %q (delivery %d)\n", d.Data, d.Count)
		if err := c.Ack(ctx, d.DeliveryID); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// done "resize photo-1" (delivery 1)
	// failed "resize photo-2" (delivery 1), giving it back
	// done "resize photo-2" (delivery 2)
	// no more jobs
}
