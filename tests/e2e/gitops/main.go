// gitops reads one Kubernetes object (JSON) on stdin and prints how two GitOps readers judge it:
//
//	gitops flux                          Flux's kstatus fork (github.com/fluxcd/cli-utils), what
//	                                     kustomize-controller's `wait: true` health check runs:
//	                                     {"status": "Current|InProgress|Failed|...", "message": ...}
//	gitops argo -success C -failure F    an Argo Workflows resource step's successCondition and
//	                                     failureCondition, evaluated as its executor does (label-selector
//	                                     requirements from k8s.io/apimachinery over gjson paths; failure
//	                                     checked first): {"result": "succeeded|failed|waiting"}
//
// Argo Workflows is not served by the Go module proxy this project builds from, so its executor's
// matchConditions is restated here with the same two libraries it uses.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/tidwall/gjson"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// gjsonLabels lets label-selector requirements read JSON paths, as Argo's executor does.
type gjsonLabels struct{ json []byte }

func (g gjsonLabels) Has(label string) bool   { return gjson.GetBytes(g.json, label).Exists() }
func (g gjsonLabels) Get(label string) string { return gjson.GetBytes(g.json, label).String() }
func (g gjsonLabels) Lookup(label string) (string, bool) {
	r := gjson.GetBytes(g.json, label)
	return r.String(), r.Exists()
}

func requirements(expr string) labels.Requirements {
	if expr == "" {
		return nil
	}
	sel, err := labels.Parse(expr)
	if err != nil {
		fail(2, fmt.Errorf("condition %q failed to parse: %w", expr, err))
	}
	reqs, _ := sel.Requirements()
	return reqs
}

func argo(raw []byte, success, failure string) string {
	ls := gjsonLabels{json: raw}
	for _, req := range requirements(failure) {
		if req.Matches(ls) {
			return "failed"
		}
	}
	reqs := requirements(success)
	matched := 0
	for _, req := range reqs {
		if req.Matches(ls) {
			matched++
		}
	}
	if matched >= len(reqs) {
		return "succeeded"
	}
	return "waiting"
}

func flux(raw []byte) map[string]string {
	obj := map[string]interface{}{}
	if err := utiljson.Unmarshal(raw, &obj); err != nil { // numbers as int64, as the API machinery expects
		fail(2, err)
	}
	res, err := status.Compute(&unstructured.Unstructured{Object: obj})
	if err != nil {
		fail(1, err)
	}
	return map[string]string{"status": res.Status.String(), "message": res.Message}
}

func fail(code int, err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(code)
}

func main() {
	if len(os.Args) < 2 {
		fail(2, fmt.Errorf("usage: gitops flux | gitops argo -success C -failure F  (object JSON on stdin)"))
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	success := fs.String("success", "", "successCondition")
	failure := fs.String("failure", "", "failureCondition")
	_ = fs.Parse(os.Args[2:])
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(2, err)
	}
	var out interface{}
	switch os.Args[1] {
	case "flux":
		out = flux(raw)
	case "argo":
		out = map[string]string{"result": argo(raw, *success, *failure)}
	default:
		fail(2, fmt.Errorf("unknown reader %q", os.Args[1]))
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}
