package hook

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/google/go-github/v60/github"

	"github.com/quai-ci/quai/store"
)

// create records a create delivery and starts nothing. GitHub sends a
// push beside the create of every new branch or tag, and sends no create
// for tags when more than three are pushed at once (go-github v60's
// CreateEvent notes), so acting on the push alone gives one run per ref.
func (h *Handler) create(log *slog.Logger, id string, payload []byte) (int, response) {
	var ev github.CreateEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		log.Warn("webhook rejected", "error", err)
		return http.StatusBadRequest, response{Message: fmt.Sprintf("invalid create payload: %v", err)}
	}
	d := store.Delivery{ID: id, Event: "create", Repo: ev.GetRepo().GetFullName(), ReceivedAt: h.now()}
	switch ev.GetRefType() {
	case "tag":
		d.Ref = "refs/tags/" + ev.GetRef()
		d.Result = "tag creation is handled by its push event"
	case "branch":
		d.Ref = "refs/heads/" + ev.GetRef()
		d.Result = "branch creation is handled by its push event"
	default:
		d.Result = fmt.Sprintf("creation of a %q starts nothing", ev.GetRefType())
	}
	return h.record(log, d, http.StatusAccepted, response{Message: d.Result + "; nothing started"})
}
