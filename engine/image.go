package engine

import (
	"context"
	"errors"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
)

// ErrImageInUse is returned, wrapped, by RemoveImage when a container still
// uses the image.
var ErrImageInUse = errors.New("image is in use by a container")

// RemoveImage untags ref and deletes its layers when no other tag needs
// them. A missing image is not an error; an image a container uses is left
// alone and reported with ErrImageInUse, since removing it by force would
// leave that container without its image.
func (e *Engine) RemoveImage(ctx context.Context, ref string) error {
	if ref == "" {
		return errors.New("removing image: empty image reference")
	}
	_, err := e.cli.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
	switch {
	case err == nil:
		return nil
	case errors.Is(notFound(err), ErrNotFound):
		return nil
	case cerrdefs.IsConflict(err):
		return fmt.Errorf("removing image %s: %w: %w", ref, ErrImageInUse, err)
	default:
		return fmt.Errorf("removing image %s: %w", ref, err)
	}
}
