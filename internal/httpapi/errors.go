package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/proto"
)

// Errors of the HTTP layer itself; broker errors pass through as they are.
var (
	// errBadRequest wraps a request that parsed but asks for something invalid.
	errBadRequest = errors.New("bad request")

	// errNoRoute is answered to a path the API does not have.
	errNoRoute = errors.New("no such route")

	// errMethod is answered to a known path asked with a method it does not take.
	errMethod = errors.New("method not allowed")
)

// errorReply is the JSON body of every error: the same numeric status as the binary
// protocol, its name in snake case, and a text for a person.
type errorReply struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string       `json:"code"`
	Status  proto.Status `json:"status"`
	Message string       `json:"message"`
}

// classify maps an error to the protocol status and the HTTP status that answer it.
// It is the one place where the HTTP API decides its error codes.
func classify(err error) (proto.Status, int) {
	switch {
	case errors.Is(err, broker.ErrInvalidKey):
		return proto.StatusInvalidKey, http.StatusBadRequest
	case errors.Is(err, broker.ErrMessageTooLarge):
		return proto.StatusMessageTooLarge, http.StatusRequestEntityTooLarge
	case errors.Is(err, broker.ErrInvalidWait), errors.Is(err, errBadRequest),
		errors.Is(err, broker.ErrInvalidOption):
		return proto.StatusBadRequest, http.StatusBadRequest
	case errors.Is(err, broker.ErrNoDelivery):
		return proto.StatusNotFound, http.StatusNotFound
	case errors.Is(err, broker.ErrQueueFull):
		return proto.StatusQueueFull, http.StatusConflict
	case errors.Is(err, broker.ErrClosed):
		return proto.StatusShuttingDown, http.StatusServiceUnavailable
	case errors.Is(err, broker.ErrDiskFull):
		return proto.StatusDiskFull, http.StatusInsufficientStorage
	case errors.Is(err, broker.ErrServerFull):
		return proto.StatusServerFull, http.StatusInsufficientStorage
	case errors.Is(err, errNoRoute):
		return proto.StatusUnknownOp, http.StatusNotFound
	case errors.Is(err, errMethod):
		return proto.StatusUnknownOp, http.StatusMethodNotAllowed
	default:
		return proto.StatusInternal, http.StatusInternalServerError
	}
}

// writeError answers r with err as a JSON error. A request whose client has gone gets
// nothing: nobody would read it.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		s.log.Debug("client gone", "path", r.URL.Path, "err", err)
		return
	}
	st, code := classify(err)
	if st == proto.StatusInternal {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		s.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "err", err)
	}

	reply := errorReply{Error: errorDetail{
		Code:    codeName(st),
		Status:  st,
		Message: clientText(err, st),
	}}
	writeJSON(w, code, reply)
}

// clientText is err's text for a client, who knows no broker: a request ended by the
// shutdown says so in those words, after what it was doing; a failure of the store
// says what the store said, not which record the broker was writing; and the
// broker's own errors lose their "broker: ".
func clientText(err error, st proto.Status) string {
	var se *broker.StoreError
	switch text := err.Error(); {
	case st == proto.StatusShuttingDown:
		what, _, found := strings.Cut(text, broker.ErrClosed.Error())
		if !found || what == "" {
			return shuttingDownText
		}
		return what + shuttingDownText
	case errors.As(err, &se):
		return se.Err.Error()
	default:
		return strings.TrimPrefix(text, "broker: ")
	}
}

// shuttingDownText answers a request that the server's shutdown ended.
const shuttingDownText = "server is shutting down"

// codeName turns a status name as PROTOCOL.md spells it (InvalidKey) into the JSON
// code (invalid_key).
func codeName(st proto.Status) string {
	var sb strings.Builder
	for i, r := range st.String() {
		if unicode.IsUpper(r) {
			if i > 0 {
				sb.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		sb.WriteRune(r)
	}
	return sb.String()
}
