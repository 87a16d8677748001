"""HTTP conventions of the suite (TMF630 style), shared by every service's blueprint."""
