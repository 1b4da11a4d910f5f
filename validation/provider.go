package validation

import (
	"fmt"
	"net/url"

	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

// ValidateProvider checks the shape of a MetricTemplate's provider: an
// address that is a URL with a host, and a Secret reference whose name and
// key Kubernetes would accept. The Secret itself is not read here: it may
// be created after the template, and an admission answer that described a
// Secret's content would show it to whoever may write templates but not
// read Secrets. The controller reads it and reports problems as Error
// rounds.
func ValidateProvider(p *field.Path, spec v1alpha1.Provider) field.ErrorList {
	var errs field.ErrorList
	if spec.Address != "" {
		u, err := url.Parse(spec.Address)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, field.Invalid(p.Child("address"), spec.Address,
				"want an http(s) base URL with a host, such as https://prometheus.team-a:9090; leave it empty for the controller's Prometheus"))
		} else if u.User != nil {
			errs = append(errs, field.Invalid(p.Child("address"), u.Redacted(),
				"credentials in the address would show in status and metrics; put them in the Secret of httpClientConfigSecretRef (basic_auth)"))
		}
	}
	if ref := spec.HTTPClientConfigSecretRef; ref != nil {
		rp := p.Child("httpClientConfigSecretRef")
		for _, msg := range utilvalidation.IsDNS1123Subdomain(ref.Name) {
			errs = append(errs, field.Invalid(rp.Child("name"), ref.Name, fmt.Sprintf("not a Secret name: %s", msg)))
		}
		for _, msg := range utilvalidation.IsConfigMapKey(ref.Key) {
			errs = append(errs, field.Invalid(rp.Child("key"), ref.Key, fmt.Sprintf("not a Secret key: %s", msg)))
		}
	}
	return errs
}
