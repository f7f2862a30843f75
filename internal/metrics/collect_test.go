package metrics

import (
	"context"
	"testing"
)

func TestMetricsCollectQueuesAfterNew(t *testing.T) {
	m := New(Config{NoRuntime: true})
	if mfs := scrape(t, m); mfs["keyq_queue_messages"] != nil || mfs["keyq_queues"] != nil {
		t.Fatal("queue series present before CollectQueues")
	}

	b := newBroker(t)
	if err := m.CollectQueues(b, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(context.Background(), "jobs", []byte("job")); err != nil {
		t.Fatal(err)
	}
	mfs := scrape(t, m)
	if got := value(t, mfs, "keyq_queue_messages", "queue", "jobs"); got != 1 {
		t.Fatalf("keyq_queue_messages{queue=jobs} = %v, want 1", got)
	}

	if err := m.CollectQueues(b, 0); err == nil {
		t.Fatal("second CollectQueues: no error, want one for the series registered twice")
	}
}
