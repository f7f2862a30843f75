package server

import (
	"context"
	"errors"
	"strings"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/proto"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("server: closed")

// statusOf maps an error from the broker to the status of its reply, and its text
// (without the "broker: " of the broker's own sentinels: the client has no broker).
// ErrEmpty is not an error on the wire: it is the Empty status with no text.
func statusOf(err error) (proto.Status, string) {
	var se *broker.StoreError
	if errors.As(err, &se) {
		// The record the broker was writing means nothing to the client; what the
		// store said (a full disk, a failed log) does.
		code, _ := statusText(err)
		return code, se.Err.Error()
	}
	code, text := statusText(err)
	return code, strings.TrimPrefix(text, "broker: ")
}

// shuttingDownText answers a request that the server's shutdown ended.
const shuttingDownText = "server is shutting down"

func statusText(err error) (proto.Status, string) {
	switch {
	case errors.Is(err, broker.ErrEmpty):
		return proto.StatusEmpty, ""
	case errors.Is(err, broker.ErrInvalidKey):
		return proto.StatusInvalidKey, err.Error()
	case errors.Is(err, broker.ErrMessageTooLarge):
		return proto.StatusMessageTooLarge, err.Error()
	case errors.Is(err, broker.ErrInvalidWait), errors.Is(err, broker.ErrInvalidOption):
		return proto.StatusBadRequest, err.Error()
	case errors.Is(err, broker.ErrQueueFull):
		return proto.StatusQueueFull, err.Error()
	case errors.Is(err, broker.ErrServerFull):
		return proto.StatusServerFull, err.Error()
	case errors.Is(err, broker.ErrNoDelivery):
		return proto.StatusNotFound, err.Error()
	case errors.Is(err, broker.ErrDiskFull):
		return proto.StatusDiskFull, err.Error()
	case errors.Is(err, broker.ErrClosed), errors.Is(err, context.Canceled):
		return proto.StatusShuttingDown, shuttingDownText
	}
	if pe := proto.AsError(err); pe != nil {
		return pe.Code, pe.Text
	}
	return proto.StatusInternal, err.Error()
}

// orEmpty returns err, or broker.ErrEmpty for a nil err: a batch with no message
// and no error found nothing.
func orEmpty(err error) error {
	if err == nil {
		return broker.ErrEmpty
	}
	return err
}
