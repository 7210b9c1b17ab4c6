// Package endpoints owns the legacy Endpoints controller: for every Service
// with a selector it keeps an Endpoints object of the same name listing the
// selected pods, grouped into subsets by resolved port set, with ready and
// not-ready addresses apart. Endpoints of selector-less Services belong to
// their users and are never touched. Reconcile is the pure core; Controller
// is the informer-driven loop around it.
package endpoints
