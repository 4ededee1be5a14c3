package dev.vhostdevice.vhostuser.cli;

import picocli.CommandLine.IVersionProvider;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * {@code --version} from the executable jar's manifest (Implementation-Title and -Version, set at packaging),
 * so the version is written in one place: the pom.
 */
public final class ManifestVersion implements IVersionProvider {
    @Spec
    CommandSpec spec;

    @Override
    public String[] getVersion() {
        Package pkg = spec.userObject().getClass().getPackage();
        String version = pkg.getImplementationVersion();
        String title = pkg.getImplementationTitle();
        return new String[] {
            (title != null ? title : spec.name()) + " " + (version != null ? version : "(development build)"),
            "Java " + Runtime.version() + " (" + System.getProperty("java.vm.vendor") + ")",
        };
    }
}
