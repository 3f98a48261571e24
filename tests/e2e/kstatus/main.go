// kstatus reads one Kubernetes object (JSON) on stdin and prints how kstatus, the library Flux and
// cli-utils use to decide readiness, classifies it: {"status": "Current|InProgress|Failed|...", "message": ...}.
package main

import (
	"encoding/json"

	"fmt"
	"io"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	obj := map[string]interface{}{}
	if err := utiljson.Unmarshal(raw, &obj); err != nil { // numbers as int64, as the API machinery expects
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	res, err := status.Compute(&unstructured.Unstructured{Object: obj})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, _ := json.Marshal(map[string]string{"status": res.Status.String(), "message": res.Message})
	fmt.Println(string(out))
}
