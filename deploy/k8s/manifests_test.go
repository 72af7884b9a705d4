// Package k8s holds the Kubernetes route of a sqlchaos soak (README.md
// here). It is its own Go module so that the Kubernetes API types its test
// decodes the manifests into stay out of sqlchaos's own go.mod; `make lint`
// runs the test.
package k8s

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// decode reads one manifest strictly: an unknown or duplicated field, or a
// value of the wrong type, is an error, as the API server's strict field
// validation would say.
func decode(t *testing.T, name string, into any) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("\n---")) {
		t.Fatalf("%s: one object per file", name)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// TestManifestsDecodeStrictly decodes every manifest here into its API
// type; a manifest of a kind this test does not know fails it, so a new
// file cannot slip past.
func TestManifestsDecodeStrictly(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, f := range files {
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		b, _ := os.ReadFile(f)
		if err := yaml.Unmarshal(b, &meta); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		switch meta.APIVersion + " " + meta.Kind {
		case "batch/v1 Job":
			decode(t, f, &batchv1.Job{})
		case "v1 PersistentVolumeClaim":
			decode(t, f, &corev1.PersistentVolumeClaim{})
		case "v1 Pod":
			decode(t, f, &corev1.Pod{})
		default:
			t.Errorf("%s: %s %s is not checked by this test", f, meta.APIVersion, meta.Kind)
		}
	}
}

// The strict decoder really rejects what the API server would.
func TestStrictDecoderRejects(t *testing.T) {
	for _, bad := range []string{
		"apiVersion: batch/v1\nkind: Job\nspec:\n  completionMod: Indexed\n",
		"apiVersion: batch/v1\nkind: Job\nspec:\n  completions: eight\n",
		"apiVersion: batch/v1\nkind: Job\nspec:\n  completions: 8\n  completions: 4\n",
		"apiVersion: batch/v1\nkind: Job\nspec:\n  template:\n    spec:\n      containers:\n        - name: x\n          securityContext:\n            privileged: true\n            capabilites: {}\n",
	} {
		if err := yaml.UnmarshalStrict([]byte(bad), &batchv1.Job{}); err == nil {
			t.Errorf("accepted:\n%s", bad)
		}
	}
}

func job(t *testing.T, name string) *batchv1.Job {
	t.Helper()
	var j batchv1.Job
	decode(t, name, &j)
	return &j
}

func env(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func claim(t *testing.T, spec corev1.PodSpec) (claim, mountPath string) {
	t.Helper()
	for _, v := range spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		for _, m := range spec.Containers[0].VolumeMounts {
			if m.Name == v.Name {
				return v.PersistentVolumeClaim.ClaimName, m.MountPath
			}
		}
	}
	t.Fatal("no claim mounted")
	return "", ""
}

// The soak Job is an Indexed Job whose shard count is its completions,
// whose pods get /dev/fuse and write their shard under the claim.
func TestSoakJob(t *testing.T) {
	var pvc corev1.PersistentVolumeClaim
	decode(t, "pvc.yaml", &pvc)
	for _, f := range []string{"soak-job.yaml", "soak-job-fuse-plugin.yaml"} {
		j := job(t, f)
		s := j.Spec
		if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
			t.Fatalf("%s: completionMode is not Indexed", f)
		}
		if s.Completions == nil || s.Parallelism == nil || *s.Parallelism < 1 || *s.Parallelism > *s.Completions {
			t.Fatalf("%s: want 1 <= parallelism <= completions, both set", f)
		}
		if s.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
			t.Fatalf("%s: a pod failure policy needs restartPolicy Never", f)
		}
		c := s.Template.Spec.Containers[0]
		if n := env(c, "SQLCHAOS_SHARDS"); n != itoa(*s.Completions) {
			t.Fatalf("%s: SQLCHAOS_SHARDS=%q but completions %d: shards would be missing or overlap", f, n, *s.Completions)
		}
		cmd := strings.Join(append(append([]string{}, c.Command...), c.Args...), " ")
		if !strings.Contains(cmd, "chaosrun soak ") || !strings.Contains(cmd, `--out "/data/$SOAK_NAME/shard-$JOB_COMPLETION_INDEX"`) {
			t.Fatalf("%s: the container does not run one shard per index into the volume: %s", f, cmd)
		}
		if name, path := claim(t, s.Template.Spec); name != pvc.Name || path != "/data" {
			t.Fatalf("%s: mounts claim %s at %s, want %s at /data", f, name, path, pvc.Name)
		}
		exit2 := false
		for _, r := range s.PodFailurePolicy.Rules {
			if r.Action == batchv1.PodFailurePolicyActionFailJob && r.OnExitCodes != nil && reflect.DeepEqual(r.OnExitCodes.Values, []int32{2}) {
				exit2 = *r.OnExitCodes.ContainerName == c.Name
			}
		}
		if !exit2 {
			t.Fatalf("%s: exit 2 (no FUSE here) should fail the Job at once", f)
		}
	}
}

func itoa(n int32) string {
	b, _ := yaml.Marshal(n)
	return strings.TrimSpace(string(b))
}

// The two routes to /dev/fuse differ in the security context and the
// device resource only.
func TestFuseRoutes(t *testing.T) {
	priv, plugin := job(t, "soak-job.yaml"), job(t, "soak-job-fuse-plugin.yaml")
	pc, dc := &priv.Spec.Template.Spec.Containers[0], &plugin.Spec.Template.Spec.Containers[0]
	if pc.SecurityContext == nil || pc.SecurityContext.Privileged == nil || !*pc.SecurityContext.Privileged {
		t.Fatal("soak-job.yaml: not privileged")
	}
	sc := dc.SecurityContext
	if sc == nil || sc.Privileged != nil || sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Add, []corev1.Capability{"SYS_ADMIN"}) ||
		sc.AppArmorProfile == nil || sc.AppArmorProfile.Type != corev1.AppArmorProfileTypeUnconfined {
		t.Fatalf("soak-job-fuse-plugin.yaml: security context %+v", sc)
	}
	if q := dc.Resources.Limits["smarter-devices/fuse"]; q.Value() != 1 {
		t.Fatalf("soak-job-fuse-plugin.yaml: smarter-devices/fuse limit %v", q.String())
	}
	pc.SecurityContext, dc.SecurityContext = nil, nil
	delete(dc.Resources.Limits, "smarter-devices/fuse")
	if !reflect.DeepEqual(priv, plugin) {
		t.Fatal("soak-job.yaml and soak-job-fuse-plugin.yaml differ beyond the route to /dev/fuse: change both")
	}
}

// The merge Job reads the soak's directory on the same claim and writes
// the merged report beside the shards.
func TestMergeJob(t *testing.T) {
	soak, merge := job(t, "soak-job.yaml"), job(t, "merge-job.yaml")
	sc, mc := soak.Spec.Template.Spec.Containers[0], merge.Spec.Template.Spec.Containers[0]
	if env(sc, "SOAK_NAME") == "" || env(sc, "SOAK_NAME") != env(mc, "SOAK_NAME") {
		t.Fatalf("SOAK_NAME %q in the soak, %q in the merge", env(sc, "SOAK_NAME"), env(mc, "SOAK_NAME"))
	}
	s1, _ := claim(t, soak.Spec.Template.Spec)
	s2, p2 := claim(t, merge.Spec.Template.Spec)
	if s1 != s2 || p2 != "/data" {
		t.Fatalf("merge mounts %s at %s, the soak writes to %s", s2, p2, s1)
	}
	cmd := strings.Join(append(append([]string{}, mc.Command...), mc.Args...), " ")
	if !strings.Contains(cmd, `chaosrun merge --out "/data/$SOAK_NAME/merged" "/data/$SOAK_NAME"`) {
		t.Fatalf("merge command: %s", cmd)
	}
	if sc.Image != mc.Image {
		t.Fatalf("images differ: %s and %s", sc.Image, mc.Image)
	}
}

// The Dockerfile builds with the Go that go.mod asks for and ships the
// sqlite3 shell.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	got := regexp.MustCompile(`(?m)^FROM golang:(\d+\.\d+)\S* AS build$`).FindSubmatch(b)
	if want == nil || got == nil || string(got[1]) != string(want[1]) {
		t.Fatalf("Dockerfile builds with golang:%s, go.mod says go %s", got, want)
	}
	for _, w := range []string{"sqlite3", "fuse3", "go build -trimpath -o /out/chaosrun ./cmd/chaosrun", `ENTRYPOINT ["chaosrun"]`} {
		if !bytes.Contains(b, []byte(w)) {
			t.Errorf("Dockerfile lacks %q", w)
		}
	}
}
