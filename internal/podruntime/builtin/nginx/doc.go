// Package nginx is the built-in stand-in for the nginx (and httpd) images:
// a static file server that looks like a stock nginx from the outside —
// the default welcome page, nginx's error pages, the Server header and
// combined-format access log lines on stdout.
package nginx
