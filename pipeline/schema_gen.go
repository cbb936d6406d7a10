//go:build ignore

// schema_gen writes docs/pipeline.schema.json from the pipeline types.
// Run it with "go generate ./pipeline" from the repository root.
package main

import (
	"log"
	"os"

	"github.com/quai-ci/quai/pipeline"
)

func main() {
	schema, err := pipeline.GenerateJSONSchema(".")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("../docs/pipeline.schema.json", schema, 0o644); err != nil {
		log.Fatal(err)
	}
}
