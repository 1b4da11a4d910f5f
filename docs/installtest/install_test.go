package installtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/fulcrum-ml/fulcrum/manifests"
)

// state is what the guide has done so far, for one choice of its options.
type state struct {
	g       *guide
	root    string
	cluster *cluster // nil under -short: no dry runs
	// namespaces the guide has created by now; objects in others are an error.
	namespaces map[string]bool
	written    map[string]string // files from `cat > FILE <<EOF`
	// installs are the objects of each way of installing Fulcrum: "helm",
	// "kustomize".
	installs map[string][]*unstructured.Unstructured
	// serviceAccounts created: namespace/name.
	serviceAccounts map[string]bool
	helmRelease     *helmInstall
	fulcrumctl      string // the built binary
	notRun          []string
}

// rule says what the test does with the commands it matches: check runs
// what can run here; a rule without check names a command that cannot, and
// why.
type rule struct {
	match func(c command) bool
	check func(t *testing.T, s *state, c command)
	why   string
}

func prefix(words ...string) func(command) bool {
	return func(c command) bool { return c.hasPrefix(words...) }
}

// fromIstioRelease matches commands on the files of the downloaded Istio
// release, which are not in this repository.
func fromIstioRelease(c command) bool {
	f, ok := c.flag("filename", "f")
	return c.hasPrefix("kubectl") && ok && strings.HasPrefix(f, "istio-")
}

var rules = []rule{
	{match: prefix("kind"), why: "no container runtime for kind"},
	{match: prefix("curl", "-L", "https://istio.io/downloadIstio"), why: "the Istio download (istioctl needs a real cluster)"},
	{match: prefix("sh", "-"), why: "runs the Istio download script"},
	{match: prefix("istioctl"), why: "istioctl installs Istio into a real cluster"},
	{match: prefix("helm", "repo", "add"), why: "a remote chart repository"},
	{match: fromIstioRelease, why: "a file of the Istio release, not in this repository"},
	{match: prefix("kubectl", "-n", "ml", "exec"), why: "needs running pods"},
	{match: prefix("kubectl", "delete", "namespace"), why: "removes what a real cluster runs"},
	{match: prefix("mkdir", "-p"), check: func(*testing.T, *state, command) {}},
	{match: prefix("kubectl", "create", "namespace"), check: checkCreateNamespace},
	{match: prefix("kubectl", "label", "namespace"), check: checkLabelNamespace},
	{match: isRolloutStatus, check: checkRolloutStatus},
	{match: isRemoteHelmInstall, check: checkRemoteHelmInstall},
	{match: func(c command) bool { return c.hasPrefix("kubectl", "apply", "-f", "-") && c.stdin != "" }, check: checkApplyStdin},
	{match: func(c command) bool { return c.hasPrefix("cat") && c.out != "" && c.stdin != "" }, check: checkWriteFile},
	{match: prefix("kubectl", "apply", "-k"), check: checkApplyKustomize},
	{match: isLocalHelmInstall, check: checkHelmInstall},
	{match: prefix("helm", "uninstall"), check: checkHelmUninstall},
	{match: prefix("make"), check: checkMake},
	{match: prefix("kubectl", "-n", "ml", "create", "serviceaccount"), check: checkCreateServiceAccount},
	{match: prefix("kubectl", "-n", "ml", "create", "rolebinding"), check: checkCreateRoleBinding},
	{match: prefix("kubectl", "-n", "ml", "create", "token"), check: checkCreateToken},
	{match: prefix("kubectl", "-n", "fulcrum-system", "port-forward"), check: checkPortForward},
	{match: prefix("kubectl", "-n", "fulcrum-system", "get", "secret"), check: checkGetCA},
	{match: prefix("base64", "-d"), check: func(_ *testing.T, s *state, c command) {
		s.notRun = append(s.notRun, fmt.Sprintf("%s (decodes what the command before it read from a running cluster)", c))
	}},
	{match: prefix("bin/fulcrumctl"), check: checkFulcrumctl},
}

// TestInstallGuide runs the guide's commands, once for each choice among
// the values it gives a variable (Prometheus from Istio's addon or from
// kube-prometheus-stack).
func TestInstallGuide(t *testing.T) {
	n := choices(parseGuide(t, 0))
	for pick := range n {
		t.Run(fmt.Sprintf("choice-%d", pick+1), func(t *testing.T) {
			g := parseGuide(t, pick)
			s := &state{g: g, root: repoRoot(t), cluster: localCluster(t), namespaces: map[string]bool{},
				written: map[string]string{}, installs: map[string][]*unstructured.Unstructured{}, serviceAccounts: map[string]bool{}}
			if s.cluster == nil {
				t.Log("no API server (-short): nothing is dry-run")
			}
			for _, v := range []string{"PROMETHEUS_URL", "IMAGE_REPOSITORY", "IMAGE_TAG"} {
				t.Logf("%s=%s", v, g.vars[v])
			}
			for _, c := range g.commands {
				i := slices.IndexFunc(rules, func(r rule) bool { return r.match(c) })
				switch {
				case i < 0:
					t.Errorf("%s: no rule for this command: check it in install_test.go, or say there why it cannot run here", c)
				case rules[i].check == nil:
					s.notRun = append(s.notRun, fmt.Sprintf("%s (%s)", c, rules[i].why))
				default:
					rules[i].check(t, s, c)
				}
			}
			for _, want := range []string{"helm", "kustomize"} {
				if s.installs[want] == nil {
					t.Errorf("the guide installs Fulcrum with no %s command", want)
				}
			}
			t.Logf("not run here:\n  %s", strings.Join(s.notRun, "\n  "))
		})
	}
}

// TestIstioVersionIsTheClients checks that the guide installs the Istio
// whose API Fulcrum is built against.
func TestIstioVersionIsTheClients(t *testing.T) {
	gomod, err := os.ReadFile(filepath.Join(repoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*istio\.io/client-go v(\S+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod requires no istio.io/client-go")
	}
	var found bool
	for _, a := range parseGuide(t, 0).assignments {
		if a.name == "ISTIO_VERSION" {
			found = true
			if a.value != string(m[1]) {
				t.Errorf("install.md:%d: ISTIO_VERSION=%s, but go.mod has istio.io/client-go v%s", a.line, a.value, m[1])
			}
		}
	}
	if !found {
		t.Error("install.md sets no ISTIO_VERSION")
	}
}

func checkCreateNamespace(t *testing.T, s *state, c command) {
	if len(c.args) != 4 {
		t.Errorf("%s: want kubectl create namespace NAME", c)
		return
	}
	s.createNamespace(t, c.args[3])
}

func (s *state) createNamespace(t *testing.T, name string) {
	s.namespaces[name] = true
	if s.cluster != nil {
		s.cluster.ensureNamespace(t, name)
	}
}

func checkLabelNamespace(t *testing.T, s *state, c command) {
	if len(c.args) != 5 || !s.namespaces[c.args[3]] || !strings.Contains(c.args[4], "=") {
		t.Errorf("%s: want kubectl label namespace NAME KEY=VALUE of a namespace created before", c)
	}
}

func isRolloutStatus(c command) bool {
	return c.hasPrefix("kubectl", "-n") && len(c.args) == 6 && c.args[3] == "rollout" && c.args[4] == "status"
}

// checkRolloutStatus: Fulcrum's Deployment must be in every install; the
// others come from Istio's files.
func checkRolloutStatus(t *testing.T, s *state, c command) {
	ns, name, _ := strings.Cut(c.args[5], "/")
	if ns != "deployment" || !strings.HasPrefix(name, "fulcrum") {
		s.notRun = append(s.notRun, fmt.Sprintf("%s (a Deployment from Istio's files)", c))
		return
	}
	for how, objs := range s.installs {
		if find(objs, "Deployment", c.args[2], name) == nil {
			t.Errorf("%s: the %s install has no Deployment %s/%s", c, how, c.args[2], name)
		}
	}
}

func isRemoteHelmInstall(c command) bool {
	return c.hasPrefix("helm", "install") && len(c.args) > 3 && !strings.HasPrefix(c.args[3], "charts/")
}

// checkRemoteHelmInstall cannot render a chart from a remote repository;
// it only creates the namespace the chart would.
func checkRemoteHelmInstall(t *testing.T, s *state, c command) {
	h, err := parseHelmInstall(s.root, c.args[2:])
	if err != nil {
		t.Errorf("%s: %v", c, err)
		return
	}
	if h.createNamespace {
		s.createNamespace(t, h.namespace)
	}
	s.notRun = append(s.notRun, fmt.Sprintf("%s (chart %s from a remote repository)", c, h.chart))
}

func isLocalHelmInstall(c command) bool {
	return c.hasPrefix("helm", "install") && len(c.args) > 3 && strings.HasPrefix(c.args[3], "charts/")
}

// checkApplyStdin dry-runs the objects of a here-document; a PodMonitor is
// first decoded into the Prometheus Operator's type with unknown fields
// refused.
func checkApplyStdin(t *testing.T, s *state, c command) {
	objs, err := manifests.Decode([]byte(c.stdin))
	if err != nil || len(objs) == 0 {
		t.Errorf("%s: the here-document is no Kubernetes YAML: %v", c, err)
		return
	}
	for _, o := range objs {
		if o.GetKind() == "PodMonitor" {
			checkPodMonitor(t, c, o)
		}
	}
	s.apply(t, c, "", objs)
}

func checkPodMonitor(t *testing.T, c command, o *unstructured.Unstructured) {
	data, err := yaml.Marshal(o.Object)
	if err != nil {
		t.Fatal(err)
	}
	var pm monitoringv1.PodMonitor
	if err := yaml.UnmarshalStrict(data, &pm); err != nil {
		t.Errorf("%s: PodMonitor %s: %v", c, o.GetName(), err)
	}
	if pm.APIVersion != monitoringv1.SchemeGroupVersion.String() {
		t.Errorf("%s: PodMonitor apiVersion %s, want %s", c, pm.APIVersion, monitoringv1.SchemeGroupVersion)
	}
}

// apply records the Namespaces among objs as created, then dry-runs the
// others; an object in a namespace the guide has not created is an error.
func (s *state) apply(t *testing.T, c command, how string, objs []*unstructured.Unstructured) {
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			s.createNamespace(t, o.GetName())
		}
	}
	for _, o := range objs {
		if ns := o.GetNamespace(); ns != "" && !s.namespaces[ns] {
			t.Errorf("%s: %s %s is in namespace %s, which the guide has not created by then", c, o.GetKind(), o.GetName(), ns)
			continue
		}
		if s.cluster != nil {
			if err := s.cluster.dryRun(t, o); err != nil {
				t.Errorf("%s %s: %v", c, how, err)
			}
		}
	}
}

func checkWriteFile(t *testing.T, s *state, c command) {
	if filepath.IsAbs(c.out) || strings.HasPrefix(filepath.Clean(c.out), "..") {
		t.Errorf("%s: writes outside the checkout", c)
		return
	}
	s.written[filepath.ToSlash(filepath.Clean(c.out))] = c.stdin
}

func checkApplyKustomize(t *testing.T, s *state, c command) {
	if len(c.args) != 4 {
		t.Errorf("%s: want kubectl apply -k DIR", c)
		return
	}
	objs, err := kustomizeBuild(t, c.args[3], s.written)
	if err != nil {
		t.Errorf("%s: %v", c, err)
		return
	}
	s.checkInstall(t, c, "kustomize", objs)
	s.apply(t, c, "(kustomize)", objs)
	s.installs["kustomize"] = objs
}

func checkHelmInstall(t *testing.T, s *state, c command) {
	h, err := parseHelmInstall(s.root, c.args[2:])
	if err != nil {
		t.Errorf("%s: %v", c, err)
		return
	}
	objs, err := h.render(s.root)
	if err != nil {
		t.Errorf("%s: %v", c, err)
		return
	}
	if h.createNamespace {
		s.createNamespace(t, h.namespace)
	}
	s.checkInstall(t, c, "helm", objs)
	s.apply(t, c, "(helm)", objs)
	s.installs["helm"] = objs
	s.helmRelease = h
}

// checkInstall: the Deployment runs the image and the Prometheus URL the
// guide chose.
func (s *state) checkInstall(t *testing.T, c command, how string, objs []*unstructured.Unstructured) {
	u := find(objs, "Deployment", "fulcrum-system", "fulcrum")
	if u == nil {
		t.Errorf("%s: the %s install has no Deployment fulcrum-system/fulcrum", c, how)
		return
	}
	var d appsv1.Deployment
	if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
		t.Fatal(err)
	}
	ctr := d.Spec.Template.Spec.Containers[0]
	if want := s.g.vars["IMAGE_REPOSITORY"] + ":" + s.g.vars["IMAGE_TAG"]; ctr.Image != want {
		t.Errorf("%s: the %s install runs image %s, want %s", c, how, ctr.Image, want)
	}
	if want := "--prometheus-url=" + s.g.vars["PROMETHEUS_URL"]; !slices.Contains(ctr.Args, want) {
		t.Errorf("%s: the %s install's arguments lack %s: %q", c, how, want, ctr.Args)
	}
}

func checkHelmUninstall(t *testing.T, s *state, c command) {
	ns, _ := c.flag("namespace", "n")
	if h := s.helmRelease; h == nil || len(c.args) < 3 || c.args[2] != h.release || ns != h.namespace {
		t.Errorf("%s: does not name the release the guide installed", c)
	}
}

func checkMake(t *testing.T, s *state, c command) {
	cmd := exec.Command("make", append([]string{"-n"}, c.args[1:]...)...)
	cmd.Dir = s.root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: make -n: %v\n%s", c, err, out)
	}
}

func checkCreateServiceAccount(t *testing.T, s *state, c command) {
	if len(c.args) != 6 {
		t.Errorf("%s: want kubectl -n NS create serviceaccount NAME", c)
		return
	}
	s.serviceAccounts[c.args[2]+"/"+c.args[5]] = true
}

// checkCreateRoleBinding: the ClusterRole is one every install creates, and
// the ServiceAccount one the guide made.
func checkCreateRoleBinding(t *testing.T, s *state, c command) {
	role, _ := c.flag("clusterrole", "")
	sa, _ := c.flag("serviceaccount", "")
	ns, name, _ := strings.Cut(sa, ":")
	if !s.serviceAccounts[ns+"/"+name] {
		t.Errorf("%s: ServiceAccount %s was not created before", c, sa)
	}
	for how, objs := range s.installs {
		if find(objs, "ClusterRole", "", role) == nil {
			t.Errorf("%s: the %s install has no ClusterRole %s", c, how, role)
		}
	}
}

// checkGetCA: the Secret the guide reads the admin API's CA from is the one
// each install's self-signed admin certificate comes from.
func checkGetCA(t *testing.T, s *state, c command) {
	if len(c.args) < 6 {
		t.Errorf("%s: which Secret?", c)
		return
	}
	secret := c.args[5]
	for how, objs := range s.installs {
		u := find(objs, "Deployment", "fulcrum-system", "fulcrum")
		if u == nil {
			t.Errorf("%s: the %s install has no Deployment fulcrum", c, how)
			continue
		}
		var d appsv1.Deployment
		if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
			t.Fatal(err)
		}
		args := d.Spec.Template.Spec.Containers[0].Args
		caSecret := "fulcrum-webhook-ca" // the flag's default
		for _, a := range args {
			if v, ok := strings.CutPrefix(a, "--webhook-ca-secret="); ok {
				caSecret = v
			}
		}
		if !slices.Contains(args, "--admin-tls-self-signed=true") || caSecret != secret {
			t.Errorf("%s: the %s install's admin certificate does not come from Secret %s (args %v)", c, how, secret, args)
		}
	}
	s.notRun = append(s.notRun, fmt.Sprintf("%s (needs a running cluster)", c))
}

func checkCreateToken(t *testing.T, s *state, c command) {
	if len(c.args) < 6 || !s.serviceAccounts[c.args[2]+"/"+c.args[5]] {
		t.Errorf("%s: a token for a ServiceAccount the guide did not create", c)
	}
	s.notRun = append(s.notRun, fmt.Sprintf("%s (needs a running cluster)", c))
}

// checkPortForward: the Service has that port, it leads to the admin API,
// and FULCRUM_SERVER is the forwarded address.
func checkPortForward(t *testing.T, s *state, c command) {
	if len(c.args) != 6 || !strings.HasPrefix(c.args[4], "svc/") {
		t.Errorf("%s: want kubectl -n NS port-forward svc/NAME LOCAL:REMOTE", c)
		return
	}
	local, remote, _ := strings.Cut(c.args[5], ":")
	for how, objs := range s.installs {
		u := find(objs, "Service", c.args[2], strings.TrimPrefix(c.args[4], "svc/"))
		if u == nil {
			t.Errorf("%s: the %s install has no Service %s", c, how, c.args[4])
			continue
		}
		var svc corev1.Service
		if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &svc); err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return fmt.Sprint(p.Port) == remote })
		if i < 0 || svc.Spec.Ports[i].TargetPort.String() != "admin" {
			t.Errorf("%s: the %s install's Service has no port %s to the admin API: %+v", c, how, remote, svc.Spec.Ports)
		}
	}
	if want := "https://localhost:" + local; s.g.vars["FULCRUM_SERVER"] != want {
		t.Errorf("%s: FULCRUM_SERVER is %q, want %s", c, s.g.vars["FULCRUM_SERVER"], want)
	}
	s.notRun = append(s.notRun, fmt.Sprintf("%s (needs a running cluster)", c))
}

// checkFulcrumctl runs the command with --help appended: cobra then checks
// the command and every flag, and prints the command's usage instead of
// calling the server.
func checkFulcrumctl(t *testing.T, s *state, c command) {
	if s.fulcrumctl == "" {
		s.fulcrumctl = filepath.Join(t.TempDir(), "fulcrumctl")
		build := exec.Command("go", "build", "-o", s.fulcrumctl, "./cmd/fulcrumctl")
		build.Dir = s.root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build fulcrumctl: %v\n%s", err, out)
		}
	}
	cmd := exec.Command(s.fulcrumctl, append(slices.Clone(c.args[1:]), "--help")...)
	cmd.Env = []string{"HOME=" + t.TempDir()}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("%s: %v\n%s", c, err, out.String())
		return
	}
	if len(c.args) > 1 && !strings.Contains(out.String(), "fulcrumctl "+c.args[1]) {
		t.Errorf("%s: fulcrumctl has no command %s:\n%s", c, c.args[1], out.String())
	}
}
