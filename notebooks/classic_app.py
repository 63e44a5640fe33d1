# ==============================================================================================
#  THE INSECURE ORIGINAL — DO NOT COPY.
#
#  The classic Flask + JWT tutorial's authentication app, exactly as it is usually taught.
#  The notebooks attack it to show why each lesson matters. What is wrong with it:
#    - the JWT signing key is hard-coded and published: anyone can mint a token for anyone;
#    - passwords are stored in plain text, in a dict, and compared with `!=`;
#    - `{"username": "ghost"}` (no password) logs in: users.get("ghost") == None == password;
#    - a JSON list or string body crashes /register and /login with a 500;
#    - "User already exists" tells anyone which usernames are taken;
#    - `app.run(debug=True)` serves the Werkzeug debugger: a Python console for anyone.
#  The fixed versions are in solutions/.
# ==============================================================================================

from flask import Flask, jsonify, request
from flask_jwt_extended import JWTManager, create_access_token, get_jwt_identity, jwt_required

app = Flask(__name__)
app.config["JWT_SECRET_KEY"] = "your_jwt_secret_key"  # INSECURE: published in the tutorial
jwt = JWTManager(app)

users = {}  # INSECURE: plain-text passwords, lost on restart


@app.route("/register", methods=["POST"])
def register():
    username = request.json.get("username")
    password = request.json.get("password")
    if username in users:
        return jsonify({"msg": "User already exists"}), 400
    users[username] = password
    return jsonify({"msg": "User registered successfully"}), 201


@app.route("/login", methods=["POST"])
def login():
    username = request.json.get("username")
    password = request.json.get("password")
    if users.get(username) != password:
        return jsonify({"msg": "Bad username or password"}), 401
    access_token = create_access_token(identity=username)
    return jsonify(access_token=access_token), 200


@app.route("/protected", methods=["GET"])
@jwt_required()
def protected():
    current_user = get_jwt_identity()
    return jsonify(logged_in_as=current_user), 200


if __name__ == "__main__":
    app.run(debug=True)  # INSECURE: the interactive debugger is remote code execution
