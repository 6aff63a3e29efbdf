//! The appliance's own TCP/UDP sockets: a smoltcp interface on the dataplane.
