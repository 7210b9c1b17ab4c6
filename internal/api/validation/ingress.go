package validation

import (
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidateIngress checks what Kubernetes requires of an Ingress: hosts
// are DNS names (a leading "*." allowed), every HTTP path has a pathType
// and Exact/Prefix paths are absolute, every backend names exactly one of
// a service (with a port name or number) or a resource.
func ValidateIngress(ing *networkingv1.Ingress) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&ing.ObjectMeta, true, apimachineryvalidation.NameIsDNSSubdomain, metaPath())
	spec := field.NewPath("spec")
	if c := ing.Spec.IngressClassName; c != nil {
		for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(*c, false) {
			errs = append(errs, field.Invalid(spec.Child("ingressClassName"), *c, msg))
		}
	}
	if b := ing.Spec.DefaultBackend; b != nil {
		errs = append(errs, validateIngressBackend(b, spec.Child("defaultBackend"))...)
	} else if len(ing.Spec.Rules) == 0 {
		errs = append(errs, field.Invalid(spec.Child("rules"), ing.Spec.Rules, "either `defaultBackend` or `rules` must be specified"))
	}
	for i, r := range ing.Spec.Rules {
		p := spec.Child("rules").Index(i)
		if r.Host != "" {
			errs = append(errs, validateIngressHost(r.Host, p.Child("host"))...)
		}
		if r.HTTP == nil {
			continue
		}
		if len(r.HTTP.Paths) == 0 {
			errs = append(errs, field.Required(p.Child("http", "paths"), ""))
		}
		for j, hp := range r.HTTP.Paths {
			pp := p.Child("http", "paths").Index(j)
			switch {
			case hp.PathType == nil:
				errs = append(errs, field.Required(pp.Child("pathType"), "pathType must be specified"))
			case *hp.PathType == networkingv1.PathTypeExact || *hp.PathType == networkingv1.PathTypePrefix:
				if !strings.HasPrefix(hp.Path, "/") {
					errs = append(errs, field.Invalid(pp.Child("path"), hp.Path, "must be an absolute path"))
				}
			case *hp.PathType == networkingv1.PathTypeImplementationSpecific:
				if hp.Path != "" && !strings.HasPrefix(hp.Path, "/") {
					errs = append(errs, field.Invalid(pp.Child("path"), hp.Path, "must be an absolute path"))
				}
			default:
				errs = append(errs, field.NotSupported(pp.Child("pathType"), *hp.PathType, []string{"Exact", "Prefix", "ImplementationSpecific"}))
			}
			errs = append(errs, validateIngressBackend(&hp.Backend, pp.Child("backend"))...)
		}
	}
	for i, tls := range ing.Spec.TLS {
		for j, h := range tls.Hosts {
			errs = append(errs, validateIngressHost(h, spec.Child("tls").Index(i).Child("hosts").Index(j))...)
		}
	}
	return errs
}

// ValidateIngressUpdate validates an update.
func ValidateIngressUpdate(ing, old *networkingv1.Ingress) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&ing.ObjectMeta, &old.ObjectMeta, metaPath())
	return append(errs, ValidateIngress(ing)...)
}

func validateIngressHost(h string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	var msgs []string
	if strings.Contains(h, "*") {
		msgs = utilvalidation.IsWildcardDNS1123Subdomain(h)
	} else {
		msgs = utilvalidation.IsDNS1123Subdomain(h)
	}
	for _, m := range msgs {
		errs = append(errs, field.Invalid(p, h, m))
	}
	return errs
}

func validateIngressBackend(b *networkingv1.IngressBackend, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case b.Service != nil && b.Resource != nil:
		errs = append(errs, field.Invalid(p, "resource and service", "cannot set both resource and service backends"))
	case b.Service != nil:
		sp := p.Child("service")
		for _, m := range utilvalidation.IsDNS1035Label(b.Service.Name) {
			errs = append(errs, field.Invalid(sp.Child("name"), b.Service.Name, m))
		}
		hasName, hasNumber := b.Service.Port.Name != "", b.Service.Port.Number != 0
		switch {
		case hasName && hasNumber:
			errs = append(errs, field.Invalid(sp.Child("port"), b.Service.Port, "cannot set both port name & port number"))
		case hasName:
			for _, m := range utilvalidation.IsValidPortName(b.Service.Port.Name) {
				errs = append(errs, field.Invalid(sp.Child("port", "name"), b.Service.Port.Name, m))
			}
		case hasNumber:
			for _, m := range utilvalidation.IsValidPortNum(int(b.Service.Port.Number)) {
				errs = append(errs, field.Invalid(sp.Child("port", "number"), b.Service.Port.Number, m))
			}
		default:
			errs = append(errs, field.Required(sp.Child("port"), "port name or number is required"))
		}
	case b.Resource != nil:
		if b.Resource.Kind == "" || b.Resource.Name == "" {
			errs = append(errs, field.Required(p.Child("resource"), "kind and name are required"))
		}
	default:
		errs = append(errs, field.Invalid(p, b, "resource or service backend is required"))
	}
	return errs
}

// ValidateIngressClass checks the controller: a domain-prefixed path, as
// Kubernetes requires ("example.com/ingress-controller").
func ValidateIngressClass(c *networkingv1.IngressClass) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&c.ObjectMeta, false, apimachineryvalidation.NameIsDNSSubdomain, metaPath())
	ctl := field.NewPath("spec", "controller")
	if c.Spec.Controller == "" {
		return append(errs, field.Required(ctl, ""))
	}
	domain, _, ok := strings.Cut(c.Spec.Controller, "/")
	if !ok || len(utilvalidation.IsDNS1123Subdomain(domain)) > 0 || len(c.Spec.Controller) > 250 {
		errs = append(errs, field.Invalid(ctl, c.Spec.Controller, "must be a domain-prefixed path (such as \"acme.io/foo\")"))
	}
	return errs
}

// ValidateIngressClassUpdate keeps the controller immutable.
func ValidateIngressClassUpdate(c, old *networkingv1.IngressClass) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&c.ObjectMeta, &old.ObjectMeta, metaPath())
	if c.Spec.Controller != old.Spec.Controller {
		errs = append(errs, field.Invalid(field.NewPath("spec", "controller"), c.Spec.Controller, "field is immutable"))
	}
	return append(errs, ValidateIngressClass(c)...)
}
