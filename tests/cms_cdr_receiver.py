#!/usr/bin/python3
## Example CDR receiver code for Cisco Meeting Server
## Copyright - Cisco Systems (2013-2017)
## No support, warranty or liability exists for this code
##
## The Cisco Meeting Server CDR guide's Appendix A receiver, ported line by line to Python 3
## for the tests: http.server in place of BaseHTTPServer, print() as a function, and
## SSLContext.wrap_socket in place of ssl.wrap_socket (removed in Python 3.12). Its HTTP
## behaviour is the original's: HTTP/1.1, a 200 with no Content-Length, one connection at a
## time. Run it with `python3 -u` so that each print reaches the test at once.
import http.server
import sys
import getopt
import ssl
class RequestHandler(http.server.BaseHTTPRequestHandler):
     handler = http.server.BaseHTTPRequestHandler
     handler.protocol_version = 'HTTP/1.1'
     print("using protocol version:", handler.protocol_version)
     def do_GET(self) :
          #print('received request for GET', self.path)
          self.send_response(200)
          self.end_headers()
     def do_POST(self) :
          print('received request for POST', self.path)
          length = int(self.headers['Content-Length'])
          post_data = self.rfile.read(length)
          print('data:', post_data.decode('utf-8'))
          self.send_response(200)
          self.end_headers()
     def log_message(self, format, *args):
          return
def main(argv) :
     try:
          opts, args = getopt.getopt(argv, 'p:c:k:')
          port = [val for opt,val in opts if opt=='-p'][0]
          assert(len(port) > 0)
          certfile_name = ''
          keyfile_name = ''
          for opt, val in opts :
               if opt=='-c' :
                    certfile_name = val
               if opt=='-k' :
                    keyfile_name = val
     except:
          print('usage: cdr_receiver.py -p <port> [-c <certfile path>] [-k <keyfile path>]')
          sys.exit(2)
     # Loopback only: every server a test starts binds to 127.0.0.1 (the guide binds '').
     server_address = ('127.0.0.1', int(port))
     httpd = http.server.HTTPServer(server_address, RequestHandler)
     if (len(certfile_name) > 0) :
          print('HTTPS mode with certfile', certfile_name)
          context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
          context.load_cert_chain(certfile=certfile_name, keyfile=keyfile_name)
          httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
     try:
          httpd.serve_forever()
     except KeyboardInterrupt:
          pass
     httpd.server_close()
if __name__ == "__main__":
     main(sys.argv[1:])
